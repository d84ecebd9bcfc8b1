"""Compile cache for Verilator's runtime library, run as verilated.mk's ``$(OBJCACHE)``.

Verilator's make rules prefix every compile with ``$(OBJCACHE)``. :func:`runtime.sim.build` sets
it to ``python -m runtime.objcache``: the objects of Verilator's own runtime (``verilated*.cpp``
from its ``include/`` directory, about 14 s of CPU, the same for every model) are compiled once
per toolchain and then copied from the cache; every other compile (the model, cocotb's
``verilator.cpp``, which includes the model's header) runs unchanged.

A cached object is keyed by the compiler's ``--version``, the whole command line and the
source's bytes, so another compiler, other flags (``VM_TRACE`` for waves, optimisation) or
another Verilator build never reuse it. Objects land in the cache under a temporary name and are
renamed, so parallel builds can share it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE_ENV = "SPARSEHW_OBJCACHE"      # the cache directory
INCLUDE_ENV = "SPARSEHW_OBJCACHE_INCLUDE"   # Verilator's include/ directory: its sources are cached


def _cached_source(argv, include: Path):
    """``(source, object)`` when ``argv`` compiles one of Verilator's runtime sources, else None."""
    if "-c" not in argv or "-o" not in argv:
        return None
    source = Path(argv[-1])
    obj = Path(argv[argv.index("-o") + 1])
    if source.suffix != ".cpp" or source.resolve().parent != include.resolve() or obj.suffix != ".o":
        return None
    return source, obj


def _key(argv, source: Path) -> str:
    version = subprocess.run([argv[0], "--version"], capture_output=True, text=True).stdout
    h = hashlib.sha256()
    for part in (version, "\0".join(argv), hashlib.sha256(source.read_bytes()).hexdigest()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def _store(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def compile_cached(argv) -> int:
    """Run the compile ``argv``, serving Verilator's runtime objects from the cache."""
    cache, include = os.environ.get(CACHE_ENV), os.environ.get(INCLUDE_ENV)
    found = _cached_source(argv, Path(include)) if cache and include else None
    if found is None:
        return subprocess.call(argv)
    source, obj = found
    dep = obj.with_suffix(".d") if "-MMD" in argv else None
    key = _key(argv, source)
    cached_obj, cached_dep = Path(cache) / f"{obj.stem}-{key}.o", Path(cache) / f"{obj.stem}-{key}.d"
    if cached_obj.exists() and (dep is None or cached_dep.exists()):
        shutil.copyfile(cached_obj, obj)
        if dep is not None:
            shutil.copyfile(cached_dep, dep)
        return 0
    status = subprocess.call(argv)
    if status == 0:
        if dep is not None:
            _store(dep, cached_dep)
        _store(obj, cached_obj)
    return status


if __name__ == "__main__":
    sys.exit(compile_cached(sys.argv[1:]))
