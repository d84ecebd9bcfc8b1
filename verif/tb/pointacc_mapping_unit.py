# amaranth: UnusedElaboratable=no
"""Testbench of the mapping unit: case construction and the cocotb scoreboard.

``map_clouds`` runs each case from reset as a host would (``runtime.pointacc.host``): load the
points, pulse ``start``, take the pairs (with random back-pressure when asked), wait for
``done``, read the counters and the sorted list back. It checks the kernel maps against
``sw.pointcloud.kernel_map`` (computed here, on the pytest side), every list framed as the spec
says, the per-offset pair counters, the stall counter against the cycles the sink saw stalled,
and, without back-pressure, ``CYCLES`` and ``SORT_CYCLES`` against the cycle model
(``sw.cyclemodel.pointacc``) built from the blocks' own cycle models.
"""

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from pyhdl.pointacc.mapping_unit import MappingUnit
from pyhdl.pointacc.streams import pair_beat_layout
from runtime import sim
from runtime.payload import unpack
from runtime.pointacc.host import UNIT_PARAMS, check_result, counter_addresses, kernel_maps, load_writes, unit_for
from runtime.scaffold import PERIOD_NS, Testbench
from sw.cyclemodel.pointacc import UnitTiming, unit_cycles
from sw.pointcloud import KeyFormat, kernel_map
from verif.golden.pointacc import intersect_steps, merge_cycles
from verif.tb.pointacc_intersect import job_cycles

MODULE = __name__


def timing(unit: MappingUnit) -> UnitTiming:
    """The unit's timing from its blocks' constants and cycle models."""
    b = unit.blocks()
    w, cb = unit.width, unit.coord_bits
    merger = b["merger"]
    return UnitTiming(
        width=w, phase_latency=unit.PHASE_LATENCY, sort_latency=b["key_pack"].latency + b["sorter"].latency,
        merge_cycles=lambda jobs: merge_cycles(jobs, w, depth=merger.depth, latency=merger.latency),
        intersect_cycles=lambda jobs: job_cycles([intersect_steps(i, o, d, cb, w) for i, o, d in jobs]))


def run(model, cases, test_dir=None) -> dict:
    """Per case name: ``points``, ``cycles``, ``sort_cycles``, ``stalls``, ``pairs``; plus the
    simulator's speed."""
    return sim.run(model, MODULE, cases, testcase="map_clouds", test_dir=test_dir)


def make_case(name, coords, params, *, p_ready=1.0, seed=0, duplicate=False):
    """A cloud to map; ``duplicate``: the cloud holds a repeated row (the unit must flag it)."""
    unit = unit_for(params)
    c = np.asarray(coords, dtype=np.int64)
    load_writes(unit, c)          # the driver's checks, before anything is simulated
    case = dict(name=name, **{k: params[k] for k in UNIT_PARAMS}, p_ready=p_ready, seed=seed,
                duplicate=int(duplicate), n_points=len(c), coords=c)
    fmt = KeyFormat(unit.coord_bits, unit.batch_bits)
    model = unit_cycles(fmt.pack(c), unit.offsets, timing(unit))
    assert model.duplicate == duplicate
    case.update(exp_cycles=model.total, exp_sort_cycles=model.sort_total)
    if not duplicate:
        _, maps = kernel_map(c, unit.kernel_size, 1, coord_bits=unit.coord_bits, batch_bits=unit.batch_bits)
        case.update(exp_len=np.array([len(mp) for mp in maps], dtype=np.int64),
                    exp_pairs=np.concatenate(maps).reshape(-1, 2))
    return case


def pair_lists(received, width, index_bits):
    """The received pair beats as lists (one per ``last``), each checked for framing."""
    if not received:
        return []
    v = unpack(pair_beat_layout(width, index_bits), [p for _, p in received])
    keep, last = v["keep"], v["last"]
    assert np.all(keep & (keep + 1) == 0), "a keep mask is not a prefix of lanes"
    n = np.array([int(k).bit_count() for k in keep])
    starts = np.concatenate([[0], np.flatnonzero(last) + 1])
    assert starts[-1] == len(received), "beats after the last 'last'"
    lanes = np.stack([v["lanes"]["in_idx"], v["lanes"]["out_idx"]], axis=-1)
    out = []
    for s, e in zip(starts[:-1], starts[1:], strict=True):
        assert np.all(n[s:e - 1] > 0), "an empty pair beat before the last of its list"
        out.append(np.concatenate([lanes[j, :n[j]] for j in range(s, e)]).reshape(-1, 2))
    return out


async def read_status(tb, addr):
    await RisingEdge(tb.dut.clk)
    tb.dut.status_addr.value = addr
    await ReadOnly()
    return int(tb.dut.status_data.value)


async def read_sorted(tb, unit, n_points):
    """The ``idx`` lanes of the sorted list, rank by rank."""
    dut, w = tb.dut, unit.width
    words = []
    for j in range(-(-n_points // w)):
        await RisingEdge(dut.clk)
        dut.sorted__addr.value = j
        dut.sorted__en.value = 1
        await RisingEdge(dut.clk)
        dut.sorted__en.value = 0
        await ReadOnly()
        words.append(int(dut.sorted__data.value))
    lanes = unpack(unit.key_layout, words)["idx"]
    return lanes.reshape(-1)[:n_points]


async def count_stalls(dut, counter):
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.pairs__valid.value == 1 and dut.pairs__ready.value == 0:
            counter[0] += 1


@cocotb.test()
async def map_clouds(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    report = {}
    for case in cases:
        name = str(case["name"])
        unit = unit_for(case)
        addrs = counter_addresses(unit)
        await tb.reset("load__en", "start", "pairs__ready", "sorted__en")
        writes = load_writes(unit, case["coords"])
        await tb.write("load", [d for _, d in writes], addrs=[a for a, _ in writes])
        p_ready = float(case["p_ready"])
        sink = tb.sink("pairs", p_ready=p_ready, seed=int(case["seed"]))
        stalled = [0]
        monitor = cocotb.start_soon(count_stalls(dut, stalled)) if p_ready < 1 else None
        started = await tb.pulse("start")
        budget = int(200 + 50 * int(case["n_points"]) / p_ready)
        await First(RisingEdge(dut.done), Timer(budget * PERIOD_NS, "ns"))
        if dut.done.value != 1:
            raise AssertionError(f"{name}: not done within {budget:.0f} cycles")
        finished = tb.cycle
        await tb.settle(4)
        tb.stop()
        if monitor is not None:
            monitor.cancel()
        await RisingEdge(dut.clk)
        dut.pairs__ready.value = 0
        count = {k: await read_status(tb, a) for k, a in addrs.items()}
        assert count["n_points"] == int(case["n_points"])
        assert count["stalls"] == stalled[0], f"{name}: {count['stalls']} stalls counted, the sink saw {stalled[0]}"
        lists = pair_lists(sink.received, unit.width, unit.index_bits)
        if int(case["duplicate"]):
            try:
                check_result(count["error"])
                raise AssertionError(f"{name}: duplicate coordinates not flagged")
            except ValueError:
                pass
            assert not lists, f"{name}: pairs emitted despite the error"
        else:
            assert count["error"] == 0, f"{name}: error flag set"
            assert len(lists) == unit.n_offsets, f"{name}: {len(lists)} pair lists"
            order = await read_sorted(tb, unit, int(case["n_points"]))
            maps = kernel_maps(lists, order)
            starts = np.concatenate([[0], np.cumsum(case["exp_len"])])
            for k in range(unit.n_offsets):
                want = case["exp_pairs"][starts[k]:starts[k + 1]]
                assert count[f"pairs{k}"] == len(lists[k]), f"{name}: offset {k}: pair counter"
                ranks = lists[k][:, 1]
                assert np.all(np.diff(ranks) > 0), f"{name}: offset {k}: pairs not ascending by output rank"
                assert np.array_equal(maps[k], want), f"{name}: offset {k}: RTL {maps[k][:4]}, kernel_map {want[:4]}"
        if float(case["p_ready"]) == 1.0:
            want = (int(case["exp_cycles"]), int(case["exp_sort_cycles"]))
            assert (count["cycles"], count["sort_cycles"]) == want, \
                f"{name}: cycles, sort cycles {count['cycles']}, {count['sort_cycles']}; the cycle model {want}"
            assert finished - started == count["cycles"], f"{name}: done seen {finished - started} after start"
        report[name] = {"points": int(case["n_points"]), "cycles": count["cycles"],
                        "sort_cycles": count["sort_cycles"], "stalls": count["stalls"],
                        "pairs": int(sum(len(x) for x in lists))}
    tb.report(report)
