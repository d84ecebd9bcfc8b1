"""RegisterFIFO alone (Amaranth's simulator) against a deque: every word in order, a word readable
the cycle after its write, level and the ready flags each cycle, and a write while full dropped,
under random writes and reads."""

import collections
import random

import pytest
from amaranth.sim import Simulator

from pyhdl.eie.register_fifo import RegisterFIFO


@pytest.mark.parametrize("depth", [1, 3, 4])
@pytest.mark.parametrize("p_write, p_read, seed", [(0.9, 0.3, 0), (0.5, 0.5, 1), (0.3, 0.9, 2)])
def test_against_a_deque(depth, p_write, p_read, seed):
    dut = RegisterFIFO(width=8, depth=depth)
    rng = random.Random(seed)
    log = {"mismatches": [], "reads": 0, "dropped": 0, "full_seen": 0}

    async def bench(ctx):
        model = collections.deque()
        for cycle in range(400):
            w_en, r_en = rng.random() < p_write, rng.random() < p_read
            word = rng.randrange(256)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_data, word)
            ctx.set(dut.r_en, r_en)
            state = (ctx.get(dut.level), ctx.get(dut.w_rdy), ctx.get(dut.r_rdy))
            want = (len(model), len(model) < depth, len(model) > 0)
            if state != want:
                log["mismatches"].append((cycle, "state", state, want))
            log["full_seen"] += len(model) == depth
            if r_en and model:
                got, expected = ctx.get(dut.r_data), model.popleft()
                log["reads"] += 1
                if got != expected:
                    log["mismatches"].append((cycle, "data", got, expected))
            if w_en:
                if state[1]:
                    model.append(word)
                else:
                    log["dropped"] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert log["mismatches"] == []
    assert log["reads"] > 50
    if p_write > p_read:
        assert log["full_seen"] and log["dropped"]       # the full case was exercised
