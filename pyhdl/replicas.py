"""Register replication: one high-fanout (or far-reaching) flip-flop as several kept copies."""

from amaranth.hdl import Signal


def replicas(m, d, copies: int, name: str, init: int = 0, shape=1) -> list:
    """``copies`` registers of ``shape`` loaded with ``d`` every cycle, marked ``keep`` so that
    synthesis keeps them apart (``runtime.bench.synth``): one high-fanout enable split into short
    nets, or one copy of a flag for each place that reads it."""
    regs = [Signal(shape, name=f"{name}_copy{i}", init=init, attrs={"keep": 1}) for i in range(copies)]
    m.d.sync += [r.eq(d) for r in regs]
    return regs
