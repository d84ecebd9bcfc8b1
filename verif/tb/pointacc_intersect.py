"""Testbench of the intersection unit: case construction and the cocotb scoreboard.

``intersect_lists`` streams jobs (a sorted input-key list on ``inputs``, a sorted output-key
list with its kernel offset on ``outputs``) and checks each job's pairs in order against
``verif.golden.pointacc.intersect`` and, without back-pressure, the cycle count predicted from
the golden step count (``job_cycles``). Back-pressure is random (``p_valid``, ``p_ready``) or a
fixed schedule (``valid_pattern``, ``ready_pattern``: 0/1 per cycle, repeated), optionally after
``hold`` cycles with ``pairs.ready`` low, at the end of which the beats each input has taken
and the port handshakes are recorded (``held`` in the metrics).
"""

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from pyhdl.pointacc.intersect import intersect_latency
from runtime import sim
from runtime.scaffold import Testbench
from sw.pointcloud import KeyFormat, kernel_map, kernel_offsets, scenes
from verif.golden.pointacc import encode, encode_down, intersect, intersect_steps, sort_elements
from verif.harness.pointacc_beats import beat_arrays, concat, key_beat_ints, read_pair_beat, split_lists

PARAMS = dict(width=8, coord_bits=16, batch_bits=8, index_bits=20)
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Totals over the timed cases (no back-pressure): ``keys`` (both inputs), ``steps``,
    ``cycles`` (first beat in to last pair beat out), ``pairs``; plus simulator speed."""
    return sim.run(model, MODULE, cases, testcase="intersect_lists", test_dir=test_dir)


def job_cycles(steps, latency):
    """Cycles from the first beat accepted to the last pair beat, jobs back to back without
    back-pressure: a cycle for the first beats to reach the current-beat registers, a step per
    cycle for every job (the next job's first step follows the final step of this one), and the
    ``latency`` of the match stages (``Intersect.latency``) after the last step."""
    return sum(steps) + 1 + latency


def make_case(name, jobs, *, p_valid=1.0, p_ready=1.0, seed=0, params=PARAMS, valid_pattern=None,
              ready_pattern=None, hold=0, downsample=False):
    """``jobs``: list of (input coords (n, 4), output coords (m, 4), offset (3,)); coords with a
    batch column. Keys are sorted here, ``idx`` = row number in the given arrays. ``downsample``:
    parity-last keys (the output coordinates must be even)."""
    w, cb, bb = params["width"], params["coord_bits"], params["batch_bits"]
    key_bits = KeyFormat(cb, bb).key_bits
    rng = np.random.default_rng(seed)
    kw = dict(key_bits=key_bits, index_bits=params["index_bits"], rng=rng)
    ins, outs, offs, exp, steps, n_keys = [], [], [], [], [], []
    enc = encode_down if downsample else encode
    for cin, cout, d in jobs:
        assert not downsample or not np.any(np.asarray(cout)[:, 1:] & 1), "stride-2 outputs are even"
        a = sort_elements((enc(*map(int, row), cb, bb), i) for i, row in enumerate(cin))
        b = sort_elements((enc(*map(int, row), cb, bb), i) for i, row in enumerate(cout))
        d = tuple(int(x) for x in d)
        ins.append(beat_arrays(a, w, prefix="in_", **kw))
        outs.append(beat_arrays(b, w, prefix="out_", **kw))
        offs.append(np.tile(d, (len(outs[-1]["out_keep"]), 1)))
        exp.append(intersect(a, b, d, cb, downsample))
        steps.append(intersect_steps(a, b, d, cb, w, downsample))
        n_keys.append(len(a) + len(b))
    flat = [p for e in exp for p in e]
    case = dict(name=name, **params, key_bits=key_bits, p_valid=p_valid, p_ready=p_ready, seed=seed,
                downsample=int(downsample),
                out_offset=np.concatenate(offs), exp_len=np.array([len(e) for e in exp], dtype=np.int64),
                exp_in=np.array([p[0] for p in flat], dtype=np.int64),
                exp_out=np.array([p[1] for p in flat], dtype=np.int64),
                exp_steps=np.array(steps, dtype=np.int64), n_keys=np.array(n_keys, dtype=np.int64),
                exp_cycles=job_cycles(steps, intersect_latency(w)))
    for k, pattern in (("valid_pattern", valid_pattern), ("ready_pattern", ready_pattern)):
        if pattern is not None:
            case[k] = np.asarray(pattern, dtype=np.int64)
    if hold:
        case["hold"] = int(hold)
    case.update(concat(ins, prefix="in_"))
    case.update(concat(outs, prefix="out_"))
    return case


def b0(xyz):
    """Coordinates (n, 3) → (n, 4) with batch 0."""
    xyz = np.asarray(xyz, dtype=np.int64).reshape(-1, 3)
    return np.concatenate([np.zeros((len(xyz), 1), dtype=np.int64), xyz], 1)


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


@cocotb.test()
async def intersect_lists(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    total = dict(keys=0, steps=0, cycles=0, pairs=0)
    held = []
    for c, case in enumerate(cases):
        await tb.reset("inputs__valid", "outputs__valid", "pairs__ready")
        dut.downsample.value = int(case["downsample"])
        w, cb, ib = (int(case[k]) for k in ("width", "coord_bits", "index_bits"))
        kb = int(case["key_bits"])
        in_words = key_beat_ints(case, w, kb, ib, prefix="in_")
        out_words = key_beat_ints(case, w, kb, ib, prefix="out_", offsets=case["out_offset"], coord_bits=cb)
        lens = case["exp_len"]
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        vpat, rpat, hold = case.get("valid_pattern"), case.get("ready_pattern"), int(case.get("hold", 0))
        timed = pv == 1.0 and pr == 1.0 and vpat is None and rpat is None and not hold
        seed = int(case["seed"])
        src_in = tb.source("inputs", p_valid=pv, seed=seed, pattern=vpat)
        src_out = tb.source("outputs", p_valid=pv, seed=seed + 1, pattern=vpat)
        src_in.send(in_words)
        src_out.send(out_words)
        if hold:        # pairs.ready stays low (reset) while the unit fills its buffers
            await tb.settle(hold)
            ports = ("inputs__ready", "outputs__ready", "pairs__valid")
            held.append({"inputs": len(src_in.sent), "outputs": len(src_out.sent),
                         **{p: int(getattr(dut, p).value) for p in ports}})
            await RisingEdge(dut.clk)
        sink = tb.sink("pairs", p_ready=pr, seed=seed + 2, pattern=rpat)
        density = min(pv if vpat is None else np.mean(vpat), pr if rpat is None else np.mean(rpat))
        budget = 100 + 4 * (len(in_words) + len(out_words) + np.sum(lens) + len(lens)) / density
        name = f"case {c} ({case['name']})"
        await tb.drain(sink, len(lens), count=lambda v, w=w, ib=ib: read_pair_beat(v, w, ib)[2], budget=budget,
                       settle=6, tag=name)
        lists = split_lists(sink.received, w, lambda v, w=w, ib=ib: read_pair_beat(v, w, ib))
        assert len(lists) == len(lens), f"{name}: {len(lists)} pair lists, expected {len(lens)}"
        starts = np.concatenate([[0], np.cumsum(lens)])
        for j, (pairs, info) in enumerate(lists):
            want = list(zip(case["exp_in"][starts[j]:starts[j + 1]].tolist(),
                            case["exp_out"][starts[j]:starts[j + 1]].tolist(), strict=True))
            assert pairs == want, f"{name} job {j}: RTL {pairs[:8]}, golden {want[:8]}"
            assert all(keep for _, keep in info[:-1]), f"{name} job {j}: an empty beat before the last"
        if timed:
            first = min(src_in.sent[0][0], src_out.sent[0][0])
            took = sink.received[-1][0] - first
            want = int(case["exp_cycles"])
            assert took == want, f"{name}: {took} cycles, expected {want}"
            total["cycles"] += took
            total["steps"] += int(np.sum(case["exp_steps"]))
            total["keys"] += int(np.sum(case["n_keys"]))
            total["pairs"] += int(np.sum(lens))
    tb.report({**total, "held": held})
