"""cocotb drivers for ``amaranth.lib.stream`` interfaces, with seeded random back-pressure.

Every cycle follows the same order: after the rising edge the drivers set their outputs, then in
the read-only phase both sides look at ``valid & ready``: a transfer happens at the next edge.
Sources keep ``valid`` and the payload steady until the transfer (the stream contract); sinks
may drop ``ready`` at random.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from runtime.scaffold import cycle_of


def port(dut, name):
    """The ``valid``/``ready``/``payload`` handles of stream port ``name`` (Amaranth's ``name__x``)."""
    return tuple(getattr(dut, f"{name}__{s}") for s in ("valid", "ready", "payload"))


class StreamSource:
    """Drives items into a stream port. ``p_valid`` is the chance of offering an item in a cycle."""

    def __init__(self, dut, name, clk, period_steps, *, p_valid=1.0, seed=0):
        self.valid, self.ready, self.payload = port(dut, name)
        self.clk, self.period = clk, period_steps
        self.p_valid = p_valid
        self.rng = random.Random(seed)
        self.queue = deque()
        self.sent = []          # (cycle of the transfer edge, item)
        self.offered = []       # first cycle each item was offered (valid high)
        self._pending = False
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, items):
        self.queue.extend(int(i) for i in items)

    @property
    def idle(self):
        return not self.queue and not self._pending

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            if not self._pending and self.queue and self.rng.random() < self.p_valid:
                self.payload.value = self.queue[0]
                self._pending = True
                self.offered.append(cycle_of(self.period) + 1)
            self.valid.value = int(self._pending)
            await ReadOnly()
            if self._pending and self.ready.value == 1:
                self.sent.append((cycle_of(self.period) + 1, self.queue.popleft()))
                self._pending = False

    def stop(self):
        """Stop driving (the caller deasserts ``valid`` outside the read-only phase)."""
        self._task.cancel()


class StreamSink:
    """Accepts items from a stream port. ``p_ready`` is the chance of ``ready`` in a cycle."""

    def __init__(self, dut, name, clk, period_steps, *, p_ready=1.0, seed=0):
        self.valid, self.ready, self.payload = port(dut, name)
        self.clk, self.period = clk, period_steps
        self.p_ready = p_ready
        self.rng = random.Random(seed)
        self.received = []      # (cycle of the transfer edge, payload as int)
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            ready = self.rng.random() < self.p_ready
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value == 1:
                self.received.append((cycle_of(self.period) + 1, int(self.payload.value)))

    def stop(self):
        self._task.cancel()
