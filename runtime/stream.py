"""cocotb drivers for ``amaranth.lib.stream`` interfaces, with seeded random back-pressure.

Every cycle follows the same order: after the rising edge the drivers set their outputs, then in
the read-only phase both sides look at ``valid & ready``: a transfer happens at the next edge.
Sources keep ``valid`` and the payload steady until the transfer (the stream contract); sinks
may drop ``ready`` at random. A ``pattern`` (0/1 per cycle, repeated) replaces the random choice
where a test needs a fixed schedule.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge


def cycle_of(period_steps: int) -> int:
    """The current clock cycle number (simulator time over the clock period)."""
    from cocotb.utils import get_sim_time

    return get_sim_time("step") // period_steps


class _Driver:
    """The ``valid``/``ready``/``payload`` handles of stream port ``name`` (Amaranth's ``name__x``),
    a seeded random generator, and the coroutine that drives the port until :meth:`stop`."""

    def __init__(self, dut, name, clk, period_steps, seed, pattern=None):
        self.name = name
        self.valid, self.ready, self.payload = (getattr(dut, f"{name}__{s}") for s in ("valid", "ready", "payload"))
        self.clk, self.period = clk, period_steps
        self.rng = random.Random(seed)
        self.pattern = None if pattern is None else [bool(int(x)) for x in pattern]
        self._tick = 0

    def _chance(self, p: float) -> bool:
        """This cycle's coin: the next bit of ``pattern``, or ``random() < p``."""
        if self.pattern is None:
            return self.rng.random() < p
        self._tick += 1
        return self.pattern[(self._tick - 1) % len(self.pattern)]

    def _start(self):
        self._task = cocotb.start_soon(self._run())

    def stop(self):
        """Stop driving (the caller deasserts ``valid`` outside the read-only phase)."""
        self._task.cancel()


class StreamSource(_Driver):
    """Drives items into a stream port. ``p_valid`` is the chance of offering an item in a cycle
    (``pattern``: whether to offer one, cycle by cycle)."""

    def __init__(self, dut, name, clk, period_steps, *, p_valid=1.0, seed=0, pattern=None):
        super().__init__(dut, name, clk, period_steps, seed, pattern)
        self.p_valid = p_valid
        self.queue = deque()
        self.sent = []          # (cycle of the transfer edge, item)
        self.offered = []       # first cycle each item was offered (valid high)
        self._pending = False
        self.valid.value = 0
        self._start()

    def send(self, items):
        self.queue.extend(int(i) for i in items)

    @property
    def idle(self):
        return not self.queue and not self._pending

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            if not self._pending and self.queue and self._chance(self.p_valid):
                self.payload.value = self.queue[0]
                self._pending = True
                self.offered.append(cycle_of(self.period) + 1)
            self.valid.value = int(self._pending)
            await ReadOnly()
            if self._pending and self.ready.value == 1:
                self.sent.append((cycle_of(self.period) + 1, self.queue.popleft()))
                self._pending = False


class StreamSink(_Driver):
    """Accepts items from a stream port. ``p_ready`` is the chance of ``ready`` in a cycle
    (``pattern``: ``ready``, cycle by cycle)."""

    def __init__(self, dut, name, clk, period_steps, *, p_ready=1.0, seed=0, pattern=None):
        super().__init__(dut, name, clk, period_steps, seed, pattern)
        self.p_ready = p_ready
        self.received = []      # (cycle of the transfer edge, payload as int)
        self.ready.value = 0
        self._start()

    @property
    def values(self) -> list:
        """The received payloads, in order."""
        return [v for _, v in self.received]

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            ready = self._chance(self.p_ready)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value == 1:
                self.received.append((cycle_of(self.period) + 1, int(self.payload.value)))
