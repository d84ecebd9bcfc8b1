"""``sparsehw bench``: measured figures, written into BENCHMARKS.md (:func:`sw.benchmarks.update`).

:data:`SECTIONS` holds what the runtime measures itself (packing, the EIE array on the RTL, load
balance, point-cloud software, FPGA synthesis); the regression registers the sections that run
single blocks through their testbenches on top (``python -m verif.bench``, what ``make bench``
runs).
"""

from sw.benchmarks import BENCHMARKS, update


def _pointcloud_software() -> str:
    from sw.pointcloud import bench as pointcloud

    return pointcloud.markdown(out=BENCHMARKS.parent / "docs")


def lazy(module: str, function: str):
    """A section that imports ``module`` only when it runs (the sections' imports are heavy)."""
    def run() -> str:
        import importlib

        return getattr(importlib.import_module(module), function)()
    return run


SECTIONS = {
    "eie-pack": lazy("runtime.bench.eie", "eie_pack"),
    "eie-array": lazy("runtime.bench.eie", "eie_array"),
    "eie-load-balance": lazy("runtime.bench.eie", "eie_load_balance"),
    "pointcloud-software": _pointcloud_software,
    "verilator-build": lazy("runtime.bench.build", "verilator_build"),
    "eie-scaling": lazy("runtime.bench.build", "eie_scaling"),
    "eie-demo": lazy("runtime.bench.eie", "eie_demo"),
    "verilator-options": lazy("runtime.bench.build", "verilator_options"),
    "synth": lazy("runtime.bench.synth", "synth_section"),
    "synth-array": lazy("runtime.bench.synth", "synth_array_section"),
}
# Sections run by default; synth and synth-array need the yowasp tools (``make synth``, ``make synth-array``).
DEFAULT = ("eie-pack", "eie-array", "eie-load-balance", "pointcloud-software", "verilator-build", "eie-scaling",
           "verilator-options", "eie-demo")


def main(argv=None) -> int:
    update(SECTIONS, list(argv) if argv else list(DEFAULT))
    return 0
