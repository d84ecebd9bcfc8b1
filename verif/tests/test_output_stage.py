"""OutputStage alone (Amaranth's simulator) against the golden output stage: accumulators at and
around both clamp limits and the accumulator's extremes, every shift, with and without ReLU,
under random back-pressure."""

import random

import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import memory
from amaranth.sim import Simulator

from pyhdl.eie.output_stage import OutputStage
from verif.golden.eie_pe import output_stage

ACC_WIDTH, ACT_WIDTH, ROWS = 42, 16, 64


def _accumulators(shift):
    """Values whose shifted result sits at, just inside and just outside each limit, and extremes."""
    edges = []
    for y in (-(1 << 15) - 1, -(1 << 15), -(1 << 15) + 1, -1, 0, 1, (1 << 15) - 2, (1 << 15) - 1, 1 << 15):
        for frac in (0, (1 << shift) - 1):
            acc = (y << shift) + frac
            if -(1 << (ACC_WIDTH - 1)) <= acc < 1 << (ACC_WIDTH - 1):
                edges.append(acc)
    edges += [-(1 << (ACC_WIDTH - 1)), (1 << (ACC_WIDTH - 1)) - 1, 1 << 30, -(1 << 30), 1 << 16, -(1 << 16) - 1]
    return (edges * 2)[:ROWS] + [0] * max(0, ROWS - 2 * len(edges))


@pytest.mark.parametrize("shift", [0, 1, 7, 15])
@pytest.mark.parametrize("relu", [False, True])
def test_clamp_limits(shift, relu):
    accs = _accumulators(shift)
    m = Module()
    m.submodules.acc = acc_mem = memory.Memory(shape=signed(ACC_WIDTH), depth=ROWS, init=accs)
    m.submodules.dut = dut = OutputStage(max_local_rows=ROWS, acc_width=ACC_WIDTH, act_width=ACT_WIDTH)
    port = acc_mem.read_port()
    m.d.comb += [port.addr.eq(dut.out_read.addr), port.en.eq(dut.out_read.en), dut.out_read.data.eq(port.data)]
    rng = random.Random(shift * 2 + relu)
    got = []

    async def bench(ctx):
        ctx.set(dut.row_valid, (1 << ROWS) - 1)
        ctx.set(dut.shift, shift)
        ctx.set(dut.relu, relu)
        row = 0
        for _ in range(6 * ROWS):
            ctx.set(dut.rows.valid, row < ROWS)
            ctx.set(dut.rows.payload, min(row, ROWS - 1))
            ready = rng.random() < 0.6
            ctx.set(dut.outputs.ready, ready)
            if ctx.get(dut.outputs.valid) and ready:
                out = ctx.get(dut.outputs.payload)
                got.append((out.local_row, out.value))
            if row < ROWS and ctx.get(dut.rows.ready):
                row += 1
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(r, output_stage(a, shift, relu)) for r, a in enumerate(accs)]
