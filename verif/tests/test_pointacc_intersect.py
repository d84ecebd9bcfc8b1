"""Intersection unit (``pyhdl/pointacc/intersect.py``) against the golden merge join, in Verilator.

``intersect_lists`` streams jobs (a sorted input-key list on ``inputs``, a sorted output-key list
with its kernel offset on ``outputs``) and checks each job's pairs in order and, without
back-pressure, the cycle count predicted from the golden step count. The scene tests run all
27 offsets of a random scene and compare the pairs with ``sw.pointcloud.kernel_map``.
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from pyhdl.pointacc.intersect import Intersect
from sw.pointcloud import KeyFormat, kernel_map, kernel_offsets, scenes
from verif.golden.pointacc import encode, intersect, intersect_steps, sort_elements
from verif.harness import bench, sim
from verif.harness.pointacc_beats import beat_arrays, concat, key_beat_ints, read_pair_beat, split_lists
from verif.harness.stream import StreamSink, StreamSource

PARAMS = dict(width=8, coord_bits=16, batch_bits=8, index_bits=20)
KEY_BITS = KeyFormat(PARAMS["coord_bits"], PARAMS["batch_bits"]).key_bits
MODULE = __name__


# ---------------------------------------------------------------- simulator side (cocotb)

@cocotb.test()
async def intersect_lists(dut):
    cases = sim.load_case()
    period = bench.start_clock(dut)
    total = dict(keys=0, steps=0, cycles=0, pairs=0)
    for c, case in enumerate(cases):
        await RisingEdge(dut.clk)
        dut.inputs__valid.value = 0
        dut.outputs__valid.value = 0
        dut.pairs__ready.value = 0
        await bench.reset(dut)
        w, cb, ib = (int(case[k]) for k in ("width", "coord_bits", "index_bits"))
        kb = int(case["key_bits"])
        in_words = key_beat_ints(case, w, kb, ib, prefix="in_")
        out_words = key_beat_ints(case, w, kb, ib, prefix="out_", offsets=case["out_offset"], coord_bits=cb)
        lens = case["exp_len"]
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        seed = int(case["seed"])
        src_in = StreamSource(dut, "inputs", dut.clk, period, p_valid=pv, seed=seed)
        src_out = StreamSource(dut, "outputs", dut.clk, period, p_valid=pv, seed=seed + 1)
        sink = StreamSink(dut, "pairs", dut.clk, period, p_ready=pr, seed=seed + 2)
        src_in.send(in_words)
        src_out.send(out_words)
        budget = 100 + 4 * (len(in_words) + len(out_words) + np.sum(lens) + len(lens)) / min(pv, pr)
        cycles = seen = n_last = 0
        while n_last < len(lens) and cycles < budget:
            await RisingEdge(dut.clk)
            cycles += 1
            for _, v in sink.received[seen:]:
                n_last += read_pair_beat(v, w, ib)[2]
            seen = len(sink.received)
        await bench.settle(dut, 6)
        for d in (src_in, src_out, sink):
            d.stop()
        name = f"case {c} ({case['name']})"
        assert src_in.idle and src_out.idle, f"{name}: inputs not all consumed"
        lists = split_lists(sink.received, w, lambda v, w=w, ib=ib: read_pair_beat(v, w, ib))
        assert len(lists) == len(lens), f"{name}: {len(lists)} pair lists, expected {len(lens)}"
        starts = np.concatenate([[0], np.cumsum(lens)])
        for j, (pairs, info) in enumerate(lists):
            want = list(zip(case["exp_in"][starts[j]:starts[j + 1]].tolist(),
                            case["exp_out"][starts[j]:starts[j + 1]].tolist(), strict=True))
            assert pairs == want, f"{name} job {j}: RTL {pairs[:8]}, golden {want[:8]}"
            assert all(keep for _, keep in info[:-1]), f"{name} job {j}: an empty beat before the last"
        if pv == 1.0 and pr == 1.0:
            first = min(src_in.sent[0][0], src_out.sent[0][0])
            took = sink.received[-1][0] - first
            want = int(case["exp_cycles"])
            assert took == want, f"{name}: {took} cycles, expected {want}"
            total["cycles"] += took
            total["steps"] += int(np.sum(case["exp_steps"]))
            total["keys"] += int(np.sum(case["n_keys"]))
            total["pairs"] += int(np.sum(lens))
    sim.report(total)


# ---------------------------------------------------------------- pytest side

@pytest.fixture(scope="session")
def model():
    return sim.build(Intersect(**PARAMS))


def job_cycles(steps):
    """Cycles from the first beat accepted to the last pair beat, jobs back to back without
    back-pressure: per job its steps and one more (its first beats load, one step per cycle
    after that, and the next job's first beats load while the final pair beat leaves)."""
    return sum(s + 1 for s in steps)


def make_case(name, jobs, *, p_valid=1.0, p_ready=1.0, seed=0, params=PARAMS):
    """``jobs``: list of (input coords (n, 4), output coords (m, 4), offset (3,)); coords with a
    batch column. Keys are sorted here, ``idx`` = row number in the given arrays."""
    w, cb, bb = params["width"], params["coord_bits"], params["batch_bits"]
    rng = np.random.default_rng(seed)
    kw = dict(key_bits=KEY_BITS, index_bits=params["index_bits"], rng=rng)
    ins, outs, offs, exp, steps, n_keys = [], [], [], [], [], []
    for cin, cout, d in jobs:
        a = sort_elements((encode(*map(int, row), cb, bb), i) for i, row in enumerate(cin))
        b = sort_elements((encode(*map(int, row), cb, bb), i) for i, row in enumerate(cout))
        d = tuple(int(x) for x in d)
        ins.append(beat_arrays(a, w, prefix="in_", **kw))
        outs.append(beat_arrays(b, w, prefix="out_", **kw))
        offs.append(np.tile(d, (len(outs[-1]["out_keep"]), 1)))
        exp.append(intersect(a, b, d, cb))
        steps.append(intersect_steps(a, b, d, cb, w))
        n_keys.append(len(a) + len(b))
    flat = [p for e in exp for p in e]
    case = dict(name=name, **params, key_bits=KEY_BITS, p_valid=p_valid, p_ready=p_ready, seed=seed,
                out_offset=np.concatenate(offs), exp_len=np.array([len(e) for e in exp], dtype=np.int64),
                exp_in=np.array([p[0] for p in flat], dtype=np.int64),
                exp_out=np.array([p[1] for p in flat], dtype=np.int64),
                exp_steps=np.array(steps, dtype=np.int64), n_keys=np.array(n_keys, dtype=np.int64),
                exp_cycles=job_cycles(steps))
    case.update(concat(ins, prefix="in_"))
    case.update(concat(outs, prefix="out_"))
    return case


def run(model, cases, tmp_path):
    return sim.run(model, MODULE, cases, testcase="intersect_lists", test_dir=tmp_path)


def b0(xyz):
    """Coordinates (n, 3) → (n, 4) with batch 0."""
    xyz = np.asarray(xyz, dtype=np.int64).reshape(-1, 3)
    return np.concatenate([np.zeros((len(xyz), 1), dtype=np.int64), xyz], 1)


def directed_jobs():
    lo, hi = KeyFormat().coord_min, KeyFormat().coord_max
    line = b0([[x, 0, 0] for x in range(20)])
    cube = b0(np.stack(np.meshgrid(range(-3, 1), range(-2, 2), range(4), indexing="ij"), -1).reshape(-1, 3))
    limits = b0([[lo, 0, 0], [hi, 0, 0], [hi, hi, hi], [lo, lo, lo], [0, hi, lo], [lo + 1, 0, 0]])
    nothing = np.zeros((0, 4), dtype=np.int64)
    bmax = (1 << PARAMS["batch_bits"]) - 1
    batches = np.array([[0, 1, 2, 3], [1, 1, 2, 3], [bmax, 1, 2, 3], [bmax, 2, 2, 3], [1, 0, 2, 3]])
    return [
        (line, b0([[x, 50, 0] for x in range(20)]), (0, 0, 0)),     # empty offset result
        (nothing, nothing, (1, 0, 0)),                               # both lists empty
        (nothing, line, (0, 0, 0)),                                  # no inputs
        (line, nothing, (0, 0, 0)),                                  # no outputs
        (b0([[3, 4, 5]]), b0([[2, 4, 5]]), (1, 0, 0)),                # one element, a match
        (b0([[3, 4, 5]]), b0([[3, 4, 5]]), (1, 0, 0)),                # one element, no match
        (line, line, (0, 0, 0)),                                     # all match: full pair beats
        (line, line, (1, 0, 0)),
        (line, line, (-1, 0, 0)),
        (cube, cube, (1, 1, 1)),                                     # negative coordinates
        (cube, cube, (-1, 0, 1)),
        (cube, b0([[-10, 0, 0]]), (7, -2, 3)),                       # a long offset
        (limits, limits, (1, 0, 0)),                                 # hi + 1 must not wrap to lo
        (limits, limits, (-1, 0, 0)),
        (limits, limits, (0, -1, 1)),
        (limits, limits, (-1, -1, -1)),
        (limits, limits, (1, 1, 1)),
        (batches, batches, (1, 0, 0)),                               # batches never match each other
        (batches, batches, (-1, 0, 0)),
    ]


def test_directed(model, tmp_path):
    jobs = directed_jobs()
    cases = [make_case(f"directed pv={pv} pr={pr}", jobs, p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    assert cases[0]["exp_len"].tolist()[:10] == [0, 0, 0, 0, 1, 0, 20, 19, 19, 27]
    # At the limits only lo <-> lo + 1 pair up (never hi + 1 -> lo); batch bmax pairs within itself.
    assert cases[0]["exp_len"].tolist()[12:] == [1, 1, 0, 0, 0, 2, 2]
    m = run(model, cases, tmp_path)
    assert m["pairs"] == int(np.sum(cases[0]["exp_len"]))


def scene_jobs(coords, stride):
    """All offsets of one scene: (inputs, outputs, offset) with the batch column."""
    out, _ = kernel_map(coords, 3, stride)
    cin = coords if coords.shape[1] == 4 else b0(coords)
    cout = out if out.shape[1] == 4 else b0(out)
    return [(cin, cout, tuple(d)) for d in kernel_offsets(3)]


def rtl_maps_match_software(case, coords, stride):
    """The golden pairs of each offset, sorted by out_idx, are the kernel map's."""
    _, maps = kernel_map(coords, 3, stride)
    starts = np.concatenate([[0], np.cumsum(case["exp_len"])])
    for k in range(27):
        p = np.stack([case["exp_in"][starts[k]:starts[k + 1]], case["exp_out"][starts[k]:starts[k + 1]]], 1)
        p = p[np.argsort(p[:, 1], kind="stable")]
        assert np.array_equal(p.reshape(-1, 2), maps[k]), f"offset {k}"


def random_scene(seed, n):
    c = scenes.scene("room", 0.2, seed=seed, n_points=30_000)
    c = c - c.mean(0).astype(np.int64)                    # negative coordinates
    return c[np.random.default_rng(seed).permutation(len(c))[:n]]


@pytest.mark.parametrize("stride", [1, 2])
def test_scene_all_27_offsets(model, tmp_path, stride):
    """The RTL reproduces the kernel map of a random scene, every offset, with back-pressure."""
    c = random_scene(stride, 400)
    jobs = scene_jobs(c, stride)
    cases = [make_case(f"scene stride {stride}", jobs, seed=30 + stride),
             make_case(f"scene stride {stride} pv=0.7 pr=0.5", jobs, p_valid=0.7, p_ready=0.5, seed=40)]
    rtl_maps_match_software(cases[0], c, stride)
    m = run(model, cases, tmp_path)
    assert m["pairs"] == sum(len(x) for x in kernel_map(c, 3, stride)[1])
    # Width-per-cycle target: both sides together advance close to `width` keys every cycle.
    assert m["keys"] / m["cycles"] > 0.8 * PARAMS["width"]


def test_batched_scene_and_key_comparisons(model, tmp_path):
    c = scenes.batch(random_scene(5, 250), random_scene(6, 250))
    jobs = scene_jobs(c, 1)
    case = make_case("batched scene pv=0.8 pr=0.8", jobs, p_valid=0.8, p_ready=0.8, seed=50)
    rtl_maps_match_software(case, c, 1)
    run(model, [case], tmp_path)
    # The scene regressions walk >= 10^4 keys through the comparators (each step compares 8 x 8).
    walked = int(np.sum(case["n_keys"])) + sum(
        int(np.sum(make_case("", scene_jobs(random_scene(s, 400), s))["n_keys"])) for s in (1, 2))
    assert walked >= 10_000


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        Intersect(width=3)
    with pytest.raises(ValueError, match="coord_bits must be >= 2"):
        Intersect(coord_bits=1)
    with pytest.raises(ValueError, match="must fit an int64"):
        Intersect(coord_bits=19)
    assert Intersect().name == "intersect_width8_coord_bits16_batch_bits8_index_bits20"
