"""ActivationQueue alone (Amaranth's simulator) against a deque: every activation in order, one
readable the cycle after its write, level, full and both handshake flags each cycle, and a push
while full refused (even in a cycle with a pop), under random pushes and pops."""

import collections
import random

import pytest
from amaranth.sim import Simulator

from pyhdl.eie.activation_queue import ActivationQueue


@pytest.mark.parametrize("depth", [1, 2, 5, 12])
@pytest.mark.parametrize("p_push, p_pop, seed", [(0.9, 0.3, 0), (0.5, 0.5, 1), (0.3, 0.9, 2), (1.0, 1.0, 3)])
def test_against_a_deque(depth, p_push, p_pop, seed):
    dut = ActivationQueue(queue_depth=depth, col_width=6, act_width=8)
    rng = random.Random(seed)
    log = {"mismatches": [], "pops": 0, "refused": 0, "full_seen": 0}

    async def bench(ctx):
        model = collections.deque()
        for cycle in range(500):
            push, pop = rng.random() < p_push, rng.random() < p_pop
            act = {"col": rng.randrange(64), "value": rng.randrange(-128, 128)}
            ctx.set(dut.push.valid, push)
            ctx.set(dut.push.payload, act)
            ctx.set(dut.pop.ready, pop)
            state = (ctx.get(dut.level), ctx.get(dut.full), ctx.get(dut.push.ready), ctx.get(dut.pop.valid))
            want = (len(model), len(model) == depth, len(model) < depth, len(model) > 0)
            if state != want:
                log["mismatches"].append((cycle, "state", state, want))
            log["full_seen"] += len(model) == depth
            if pop and model:
                got = ctx.get(dut.pop.payload)
                expected = model.popleft()
                log["pops"] += 1
                if (got.col, got.value) != (expected["col"], expected["value"]):
                    log["mismatches"].append((cycle, "data", (got.col, got.value), expected))
            if push:
                if state[2]:
                    model.append(act)
                else:
                    log["refused"] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert log["mismatches"] == []
    assert log["pops"] > 100
    if p_push > p_pop or depth == 1:
        assert log["full_seen"] and log["refused"]       # the full case was exercised
