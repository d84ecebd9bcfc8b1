"""``pyhdl.pointacc.pipeline.stage_control`` alone (Amaranth's simulator): items pass in order,
none lost or doubled, one a cycle while the consumer is ready, and a stalled pipeline fills every
stage (a bubble moves one stage forward per stalled cycle), with a combinational ``out_ready`` and
with a registered one whose next value is given (``out_ready_next``: ``load[0]`` a register),
and with the data enables as flip-flop copies (``copies``), each equal to its stage's load every
cycle."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from pyhdl.pointacc.pipeline import share, stage_control

N = 4
COPIES = 3


class Stages(wiring.Component):
    """``N`` stages carrying an 8-bit item; ``ready_in`` is the consumer's ready (``registered``:
    it reaches ``stage_control`` through a register, its next value given; ``copies``: so, and the
    data bits load under copies of the stage enables, bit ``i`` under copy ``i mod COPIES``)."""

    def __init__(self, registered, copies=False):
        self.registered, self.copies = registered, copies
        self.load, self.enables = None, None
        super().__init__({"in_valid": In(1), "in_data": In(8), "ready_in": In(1), "in_ready": Out(1),
                          "out_valid": Out(1), "out_data": Out(8), "out_ready": Out(1), "full": Out(N)})

    def elaborate(self, platform):
        m = Module()
        if self.registered:
            ready = Signal(init=1)
            m.d.sync += ready.eq(self.ready_in)
            if self.copies:
                valid, load, self.enables = stage_control(m, N, self.in_valid, ready, "s",
                                                          out_ready_next=self.ready_in, copies=COPIES)
            else:
                valid, load = stage_control(m, N, self.in_valid, ready, "s", out_ready_next=self.ready_in)
        else:
            ready = self.ready_in
            valid, load = stage_control(m, N, self.in_valid, ready, "s")
        self.load = load
        data = [Signal(8, name=f"d{s}") for s in range(N)]
        for s in range(N):
            src = self.in_data if s == 0 else data[s - 1]
            for i in range(8):
                with m.If(share(self.enables[s], i) if self.copies else load[s]):
                    m.d.sync += data[s][i].eq(src[i])
        m.d.comb += [self.in_ready.eq(load[0]), self.out_valid.eq(valid[-1]), self.out_data.eq(data[-1]),
                     self.out_ready.eq(ready)]
        m.d.comb += [self.full[s].eq(valid[s]) for s in range(N)]
        return m


@pytest.mark.parametrize("registered, copies", [(False, False), (True, False), (True, True)])
def test_order_throughput_and_bubbles(registered, copies):
    dut = Stages(registered, copies)
    rng = np.random.default_rng(3 + registered + copies)
    log = {"copies_differ": 0}

    async def bench(ctx):
        sent, got, cycle = 0, [], 0

        async def step(in_valid, ready):
            nonlocal sent, cycle
            ctx.set(dut.in_valid, in_valid)
            ctx.set(dut.in_data, sent % 256)
            ctx.set(dut.ready_in, ready)
            took = in_valid and ctx.get(dut.in_ready)
            if ctx.get(dut.out_valid) and ctx.get(dut.out_ready):
                got.append(ctx.get(dut.out_data))
            if copies:
                log["copies_differ"] += sum(ctx.get(c) != ctx.get(dut.load[s])
                                            for s in range(N) for c in dut.enables[s])
            await ctx.tick()
            sent += took
            cycle += 1

        # A stalled consumer: items offered every other cycle still fill every stage.
        for t in range(3 * N):
            await step(t % 2, 0)
        log["full_when_stalled"] = ctx.get(dut.full)
        # Ready again and items every cycle: one out a cycle once the output is valid.
        for _ in range(2):                  # the registered ready follows a cycle later
            await step(1, 1)
        start, n0 = cycle, len(got)
        for _ in range(40):
            await step(1, 1)
        log["rate"] = (len(got) - n0) / (cycle - start)
        # Random traffic both ways.
        for _ in range(400):
            await step(int(rng.random() < 0.7), int(rng.random() < 0.6))
        for _ in range(4 * N):
            await step(0, 1)
        log["sent"], log["got"] = sent, got

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert log["full_when_stalled"] == (1 << N) - 1
    assert log["copies_differ"] == 0
    assert log["rate"] == 1.0
    want = [i % 256 for i in range(log["sent"])]
    bad = next((i for i, (g, x) in enumerate(zip(log["got"], want, strict=False)) if g != x), None)
    assert log["got"] == want and log["sent"] > 200, (bad, log["got"][bad - 2:bad + 3] if bad else len(log["got"]))
