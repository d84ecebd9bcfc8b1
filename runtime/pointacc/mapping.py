# amaranth: UnusedElaboratable=no
"""Point clouds through the mapping unit RTL (``pyhdl/pointacc/mapping_unit.py``) in Verilator.

``map_clouds`` is the cocotb test: for each case, from reset, it does what a host does
(``runtime.pointacc.host``): load the points, pulse ``start``, take the pairs (with seeded random
back-pressure when asked), wait for ``done``, read every counter and, unless the error flag is
set, the sorted list. It reports what it saw; it checks only the unit's stream framing (a keep
mask that is not a prefix, an empty beat inside a list, beats after the last list). Judging the
maps is the caller's: :func:`map_cloud` (``sparsehw sim pointacc``) compares them with
``sw.pointcloud.kernel_map``, the regression also with the cycle model.
"""

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from pyhdl.pointacc.streams import pair_beat_layout
from runtime import sim
from runtime.payload import unpack
from runtime.pointacc.host import UNIT_PARAMS, counter_addresses, kernel_maps, load_writes, output_coords, unit_for
from runtime.scaffold import PERIOD_NS, Testbench

MODULE = __name__
MIN_POINTS = 4096       # the smallest unit fit_params builds, so that small clouds share a build
POLL_CYCLES = 4096      # how often a run reports its progress (offsets whose pairs are all out)


def fit_params(n_points: int, *, width: int = 8, kernel_size: int = 3) -> dict:
    """Unit parameters for a cloud of ``n_points``: ``max_points`` the next power of two (at least
    :data:`MIN_POINTS`), so that similar clouds share one Verilator build."""
    max_points = max(MIN_POINTS, width, 1 << max(0, int(n_points) - 1).bit_length())
    return dict(max_points=max_points, width=width, coord_bits=16, batch_bits=8, kernel_size=kernel_size)


def model(params: dict) -> sim.Model:
    """The Verilator model of the unit for ``params`` (built once, cached by its Verilog)."""
    return sim.build(unit_for(params))


def make_case(name, coords, params, *, stride=1, p_ready=1.0, seed=0, **extra) -> dict:
    """A cloud to map at ``stride`` (1 or 2), checked by the driver before anything is simulated
    (``ValueError``); ``extra`` travels with the case (the regression's expectations)."""
    c = np.asarray(coords, dtype=np.int64)
    load_writes(unit_for(params), c, stride=stride)
    return dict(name=name, **{k: params[k] for k in UNIT_PARAMS}, stride=stride, p_ready=p_ready, seed=seed,
                n_points=len(c), coords=c, **extra)


def run(model, cases, test_dir=None, *, progress: str | None = None) -> dict:
    """``progress``: a bar of that name over the offsets mapped. Per case name: ``counters`` (every
    status counter by name), ``done_after_start`` (cycles from
    the ``start`` pulse to ``done``), ``sink_stalls`` (cycles the sink held a valid beat back),
    ``lists`` (per offset, the ``(in_idx, out_rank)`` pairs as they came), ``order`` and ``keys``
    (the ``idx`` and key lanes of the output list read back, ``N_OUT`` of them; empty when the
    error flag is set); plus the simulator's ``sim_cycles`` and ``sim_wall_s``."""
    total = sum(unit_for(c).n_offsets for c in cases)
    return sim.run(model, MODULE, cases, testcase="map_clouds", test_dir=test_dir,
                   progress=(progress, total) if progress else None)


def map_cloud(coords, params: dict | None = None, *, stride: int = 1, p_ready: float = 1.0, seed: int = 0,
              test_dir=None, progress: str | None = None) -> dict:
    """One cloud through the unit (sized by :func:`fit_params` unless ``params``): its run as
    :func:`run` reports it, with ``out_coords`` and ``maps`` (``kernel_map(coords, stride)``'s,
    rebuilt as docs/spec.md §5.7 says; ``None`` when the error flag is set), ``params`` and the
    simulator speed."""
    c = np.asarray(coords)
    params = params or fit_params(len(c))
    case = make_case("cloud", c, params, stride=stride, p_ready=p_ready, seed=seed)
    out = run(model(params), [case], test_dir, progress=progress)
    r = out["cloud"]
    r["maps"] = r["out_coords"] = None
    if not r["counters"]["error"]:
        if stride == 1:
            r["maps"], r["out_coords"] = kernel_maps(r["lists"], r["order"]), c
        else:
            r["maps"] = kernel_maps(r["lists"])
            r["out_coords"] = output_coords(unit_for(params), r["keys"], c.shape[1])
    r.update(params=params, sim_cycles=out["sim_cycles"], sim_wall_s=out["sim_wall_s"])
    return r


def pair_lists(received, width, index_bits) -> list:
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


async def read_status(tb, addr) -> int:
    await RisingEdge(tb.dut.clk)
    tb.dut.status_addr.value = addr
    await ReadOnly()
    return int(tb.dut.status_data.value)


async def read_sorted(tb, unit, n_points) -> tuple:
    """The ``idx`` and ``key`` lanes of the output list, rank by rank."""
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
    lanes = unpack(unit.key_layout, words)
    return lanes["idx"].reshape(-1)[:n_points], lanes["key"].reshape(-1)[:n_points]


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
    for i, case in enumerate(cases):
        name = str(case["name"])
        unit = unit_for(case)
        addrs = counter_addresses(unit)
        await tb.reset("load__en", "start", "pairs__ready", "sorted__en")
        writes = load_writes(unit, case["coords"], stride=int(case["stride"]))
        await tb.write("load", [d for _, d in writes], addrs=[a for a, _ in writes])
        p_ready = float(case["p_ready"])
        sink = tb.sink("pairs", p_ready=p_ready, seed=int(case["seed"]))
        stalled = [0]
        monitor = cocotb.start_soon(count_stalls(dut, stalled)) if p_ready < 1 else None
        started = await tb.pulse("start")
        budget = int(200 + 50 * int(case["n_points"]) / p_ready)
        seen = lists_done = 0
        while dut.done.value != 1 and tb.cycle - started < budget:     # progress: offsets finished
            await First(RisingEdge(dut.done), Timer(POLL_CYCLES * PERIOD_NS, "ns"))
            new = [p for _, p in sink.received[seen:]]
            seen += len(new)
            if new:
                lists_done += int(unpack(pair_beat_layout(unit.width, unit.index_bits), new)["last"].sum())
                sim.progress(i * unit.n_offsets + lists_done)
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
        lists = pair_lists(sink.received, unit.width, unit.index_bits)
        order, keys = ([], []) if count["error"] else await read_sorted(tb, unit, count["n_out"])
        report[name] = {"counters": count, "done_after_start": finished - started, "sink_stalls": stalled[0],
                        "lists": [lst.tolist() for lst in lists], "order": [int(r) for r in order],
                        "keys": [int(k) for k in keys]}
        sim.progress((i + 1) * unit.n_offsets)
    tb.report(report)
