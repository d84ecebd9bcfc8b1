"""RunReader alone (Amaranth's simulator): the lists it streams, its first beat exactly LATENCY
cycles after start, and busy held until the last beat is taken, under random back-pressure."""

import random

import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import data, memory
from amaranth.sim import Simulator

from pyhdl.pointacc.run_reader import RunReader

WIDTH, DEPTH = 2, 16


def _reader_with_memory(words):
    m = Module()
    lanes = data.ArrayLayout(unsigned(8), WIDTH)
    m.submodules.mem = mem = memory.Memory(shape=lanes, depth=DEPTH, init=words)
    m.submodules.reader = reader = RunReader(lanes, depth=DEPTH, max_lists=8)
    port = mem.read_port()
    m.d.comb += [port.addr.eq(reader.read.addr), port.en.eq(reader.read.en), reader.read.data.eq(port.data)]
    return m, reader


def _expected(n_beats, first, stride, run_beats, n_lists, last_keep):
    """(list, addr, keep, last) of every beat, from the docstring's rule."""
    beats = []
    for j in range(n_lists):
        start = first + j * stride
        if start >= n_beats:
            beats.append((j, None, 0, 1))
            continue
        addrs = list(range(start, min(start + run_beats, n_beats)))
        for i, a in enumerate(addrs):
            keep = last_keep if a == n_beats - 1 else (1 << WIDTH) - 1
            beats.append((j, a, keep, int(i == len(addrs) - 1)))
    return beats


CONFIGS = {
    "runs, a cut one and an empty list": dict(n_beats=11, first=1, stride=4, run_beats=3, n_lists=4, last_keep=0b01),
    # one read in all: its beat sits a cycle in the FIFO's memory after the last read
    "one beat": dict(n_beats=5, first=2, stride=0, run_beats=1, n_lists=1, last_keep=0b11),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("p_ready, seed", [(1.0, 0), (0.5, 1), (0.2, 2)])
def test_lists_latency_and_busy(config, p_ready, seed):
    words = [[(3 * a) % 256, (3 * a + 1) % 256] for a in range(DEPTH)]
    m, reader = _reader_with_memory(words)
    cfg = CONFIGS[config]
    want = _expected(**cfg)
    rng = random.Random(seed)
    log = {"got": [], "first_offer": None, "idle_while_pending": 0}

    async def bench(ctx):
        for k, v in cfg.items():
            ctx.set(getattr(reader, k), v)
        ctx.set(reader.start, 1)
        await ctx.tick()                       # the edge that samples start
        ctx.set(reader.start, 0)
        for cycle in range(200):
            ready = int(rng.random() < p_ready)
            ctx.set(reader.beats.ready, ready)
            if ctx.get(reader.beats.valid) and log["first_offer"] is None:
                log["first_offer"] = cycle
            if len(log["got"]) < len(want) and not ctx.get(reader.busy):
                log["idle_while_pending"] += 1
            if ctx.get(reader.beats.valid) and ready:
                b = ctx.get(reader.beats.payload)
                log["got"].append((b.list, b.addr, b.keep, b.last, [int(x) for x in b.lanes]))
            await ctx.tick()
        log["busy_at_end"] = ctx.get(reader.busy)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    # offered in the cycle after edge e + LATENCY (cycle 0 follows e, the edge that sampled start)
    assert log["first_offer"] == RunReader.LATENCY
    assert log["idle_while_pending"] == 0 and log["busy_at_end"] == 0
    assert len(log["got"]) == len(want)
    for (lst, addr, keep, last, lanes), (w_lst, w_addr, w_keep, w_last) in zip(log["got"], want, strict=True):
        assert (lst, keep, last) == (w_lst, w_keep, w_last)
        if w_addr is not None:
            assert addr == w_addr and lanes == words[w_addr]
