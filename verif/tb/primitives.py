"""Testbench of ``pyhdl.primitives``: each block's behavioural and ECP5 versions side by side in one
Verilator model, driven cycle by cycle with the same seeded random inputs and checked, every
cycle, against the golden cycle model (``verif.golden.primitives``).

The ECP5 version is elaborated for ``pyhdl.platform.ECP5`` (``DP16KD`` / ``MULT18X18D``
instances) and simulated with the primitive models of ``verif/ecp5/``; the behavioural version is
the one ``rtl/`` and every other simulation use. A :class:`Miter` top holds one ``(behavioural,
ECP5)`` pair per unit: inputs shared, each output twice (``<unit>__<port>`` and
``<unit>__<port>__ecp5``).
"""

from pathlib import Path

import cocotb
import numpy as np
from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from cocotb.triggers import FallingEdge

from pyhdl.instance import port_name
from runtime import sim
from runtime.scaffold import Testbench

MODULE = __name__
MODELS = Path(__file__).resolve().parents[1] / "ecp5"


class Miter(wiring.Component):
    """``units``: ``(tag, behavioural, ecp5)`` triples of equal components (each with a ``name``);
    both are instantiated by name on the same inputs."""

    def __init__(self, name: str, units):
        self.name = name
        self.units = list(units)
        members = {}
        for tag, beh, _ in self.units:
            for path, member, value in beh.signature.flatten(beh):
                port, width = f"{tag}__{port_name(path)}", len(Value.cast(value))
                if member.flow == In:
                    members[port] = In(width)
                else:
                    members[port] = Out(width)
                    members[f"{port}__ecp5"] = Out(width)
        super().__init__(members)

    def verilog_dependencies(self) -> list:
        return [beh for _, beh, _ in self.units]

    def elaborate(self, platform):
        m = Module()
        for tag, beh, ecp5 in self.units:
            ports = {"beh": {}, "ecp5": {}}
            for path, member, _ in beh.signature.flatten(beh):
                name = port_name(path)
                if member.flow == In:
                    ports["beh"][f"i_{name}"] = ports["ecp5"][f"i_{name}"] = getattr(self, f"{tag}__{name}")
                else:
                    ports["beh"][f"o_{name}"] = getattr(self, f"{tag}__{name}")
                    ports["ecp5"][f"o_{name}"] = getattr(self, f"{tag}__{name}__ecp5")
            for kind, unit in (("beh", beh), ("ecp5", ecp5)):
                m.submodules[f"{tag}_{kind}"] = Instance(unit.name, i_clk=ClockSignal(), i_rst=ResetSignal(),
                                                         **ports[kind])
        return m


def build(name: str, units):
    """The Verilator model of a :class:`Miter` over ``units``: ``(tag, make)`` pairs, ``make()``
    returning a fresh component (called twice: behavioural and ECP5 copies)."""
    from pyhdl.gen import generate
    from pyhdl.platform import ECP5

    triples = []
    for tag, make in units:
        beh, ecp5 = make(), make()
        beh.name, ecp5.name = f"{name}_{tag}", f"{name}_{tag}_ecp5"
        triples.append((tag, beh, ecp5))
    miter = Miter(name, triples)

    def harness(top):
        text = "".join(generate(e, platform=ECP5()) for _, _, e in triples)
        text += "".join(f.read_text() for f in sorted(MODELS.glob("*.v")))
        return top.name, text

    return sim.build(miter, harness=harness)


def run(model, case: dict, test_dir=None) -> dict:
    """Run one lockstep case: ``case["rst"]`` and ``case["in/<port>"]`` (one int per cycle) drive
    the miter, ``case["exp/<port>"]`` is the golden value of output ``<port>`` after each edge."""
    return sim.run(model, MODULE, [case], testcase="lockstep", test_dir=test_dir)


@cocotb.test()
async def lockstep(dut):
    case = sim.load_case()[0]
    inputs = {k[3:]: np.asarray(v).tolist() for k, v in case.items() if k.startswith("in/")}
    expected = {k[4:]: np.asarray(v).tolist() for k, v in case.items() if k.startswith("exp/")}
    rst = np.asarray(case["rst"]).tolist()
    tb = Testbench(dut)
    drive = {name: getattr(dut, name) for name in inputs}
    watch = {name: (getattr(dut, name), getattr(dut, f"{name}__ecp5")) for name in expected}
    n = len(rst)
    for t in range(n + 1):
        await FallingEdge(dut.clk)
        if t:       # outputs after edge t - 1
            for name, (beh, ecp5) in watch.items():
                want = expected[name][t - 1]
                got_b, got_e = int(beh.value), int(ecp5.value)
                assert got_b == want and got_e == want, (
                    f"cycle {t - 1}, {name}: behavioural {got_b:#x}, ECP5 {got_e:#x}, golden {want:#x}")
        if t < n:
            dut.rst.value = rst[t]
            for name, handle in drive.items():
                handle.value = inputs[name][t]
    tb.report({"cycles": n, "checked": n * len(watch)})
