"""The scaffold every cocotb testbench stands on: clock, reset, load ports, stream drivers, waits
and the metrics report.

A test makes one :class:`Testbench` and runs its cases on it::

    tb = Testbench(dut)
    for case in cases:
        await tb.reset("beats__valid", "results__ready")      # inputs to hold at 0
        src = tb.source("beats", p_valid=0.5, seed=1)
        sink = tb.sink("results", p_ready=0.5, seed=2)
        src.send(words)
        await tb.drain(sink, n, budget=1000, settle=8, tag="case 0")
        ...                                                   # score sink.received
    tb.report({"cycles": ...})
"""

import time

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from runtime import sim
from runtime.stream import StreamSink, StreamSource, cycle_of

PERIOD_NS = 10


class Testbench:
    """One cocotb test on ``dut`` (ports ``clk`` and ``rst``): starts the clock; :meth:`source` and
    :meth:`sink` drivers (seeded random back-pressure) run until :meth:`drain` or :meth:`stop`."""

    def __init__(self, dut):
        from cocotb.utils import get_sim_steps

        self.dut = dut
        Clock(dut.clk, PERIOD_NS, unit="ns").start()
        self.period = get_sim_steps(PERIOD_NS, "ns")     # simulator steps per cycle
        self._wall0 = time.perf_counter()
        self._drivers = []

    @property
    def cycle(self) -> int:
        """The current clock cycle number."""
        return cycle_of(self.period)

    async def reset(self, *inputs: str, cycles: int = 2) -> None:
        """Start a case: after the next edge (out of any read-only phase) set the named input
        signals to 0, then Amaranth's synchronous reset for ``cycles`` edges (registers return to
        their init values; memories keep theirs)."""
        dut = self.dut
        await RisingEdge(dut.clk)
        for name in inputs:
            getattr(dut, name).value = 0
        dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(dut.clk)
        dut.rst.value = 0

    async def write(self, port: str, words, *, addrs=None) -> None:
        """Write ``words`` through load port ``port`` (``addr``/``data``/``en``), one per cycle, at
        ``addrs`` (default ``0, 1, ...``)."""
        addr, data, en = (getattr(self.dut, f"{port}__{s}") for s in ("addr", "data", "en"))
        words = list(words)
        addrs = range(len(words)) if addrs is None else addrs
        for a, w in zip(addrs, words, strict=True):
            await RisingEdge(self.dut.clk)
            addr.value = int(a)
            data.value = int(w)
            en.value = 1
        await RisingEdge(self.dut.clk)
        en.value = 0

    async def pulse(self, name: str) -> int:
        """Hold input ``name`` at 1 for one cycle; returns the cycle of the edge that samples it."""
        await RisingEdge(self.dut.clk)
        getattr(self.dut, name).value = 1
        sampled = self.cycle + 1
        await RisingEdge(self.dut.clk)
        getattr(self.dut, name).value = 0
        return sampled

    async def settle(self, cycles: int) -> None:
        """``cycles`` edges, then the read-only phase (to look at outputs)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        await ReadOnly()

    def source(self, port: str, *, p_valid: float = 1.0, seed: int = 0, pattern=None) -> StreamSource:
        src = StreamSource(self.dut, port, self.dut.clk, self.period, p_valid=p_valid, seed=seed, pattern=pattern)
        self._drivers.append(src)
        return src

    def sink(self, port: str, *, p_ready: float = 1.0, seed: int = 0, pattern=None) -> StreamSink:
        sink = StreamSink(self.dut, port, self.dut.clk, self.period, p_ready=p_ready, seed=seed, pattern=pattern)
        self._drivers.append(sink)
        return sink

    def stop(self) -> None:
        """Stop every running driver."""
        for d in self._drivers:
            d.stop()
        self._drivers = []

    async def wait_until(self, condition, budget: int, what: str) -> int:
        """Look at ``condition()`` in the read-only phase of each of the next ``budget`` cycles;
        returns the cycle it first holds in, and fails with ``"{what} within {budget} cycles"``
        when it never does."""
        for _ in range(int(budget)):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if condition():
                return self.cycle
        raise AssertionError(f"{what} within {int(budget)} cycles")

    async def drain(self, sink: StreamSink, n: int, *, budget: float, settle: int, count=None,
                    tag: str = "") -> None:
        """Wait until ``sink`` has received ``n`` items (``count(payload)`` of them per payload,
        when given) and every running source is idle, or ``budget`` cycles pass; then ``settle``
        cycles more (anything extra arrives now), stop every driver, and fail with a message
        naming what is missing. Exactly ``n`` is the caller's check."""
        sources = [d for d in self._drivers if isinstance(d, StreamSource)]
        seen = got = cycles = 0

        def done():
            nonlocal seen, got
            new = sink.received[seen:]
            got += len(new) if count is None else sum(count(v) for _, v in new)
            seen += len(new)
            return got >= n and all(s.idle for s in sources)

        while not done() and cycles < budget:
            await RisingEdge(self.dut.clk)
            cycles += 1
        await self.settle(settle)
        self.stop()
        done()
        where = f"{tag}: " if tag else ""
        assert got >= n, f"{where}'{sink.name}' delivered {got} of {n} items in {cycles} cycles (budget {budget:.0f})"
        stuck = [f"'{s.name}' ({len(s.queue)} items)" for s in sources if not s.idle]
        assert not stuck, f"{where}inputs not all consumed: {', '.join(stuck)}"

    def report(self, metrics: dict) -> None:
        """Record ``metrics`` for the pytest side, with the simulated cycles and the wall time."""
        sim.report({**metrics, "sim_cycles": self.cycle, "sim_wall_s": time.perf_counter() - self._wall0})
