# amaranth: UnusedElaboratable=no
"""Intersection unit (``pyhdl/pointacc/intersect.py``) against the golden merge join, in Verilator.

Scenarios only; case construction and the cocotb scoreboard live in
``verif/tb/pointacc_intersect.py``. The scene tests run all 27 offsets of a random scene and
compare the pairs with ``sw.pointcloud.kernel_map``.
"""

import numpy as np
import pytest

from pyhdl.pointacc.intersect import Intersect
from runtime import sim
from sw.pointcloud import KeyFormat, kernel_map, scenes
from verif.tb.pointacc_intersect import (
    PARAMS,
    b0,
    make_case,
    random_scene,
    rtl_maps_match_software,
    run,
    scene_jobs,
)


@pytest.fixture(scope="session")
def model():
    return sim.build(Intersect(**PARAMS))


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
        # The highest lane alone decides when a beat retires: here only lane 7 (x = 9) of the
        # output beat reaches into the second input beat.
        (line[:16], b0([[x, 0, 0] for x in (0, 1, 2, 3, 4, 5, 6, 9)]), (0, 0, 0)),
        (line[:16], b0([[x, 0, 0] for x in (0, 1, 2, 3, 4, 5, 12)]), (0, 0, 0)),   # a 7-key beat
        (line[:7], line[:7], (0, 0, 0)),                             # two 7-key beats tie at the top
    ]


def test_directed(model, tmp_path):
    jobs = directed_jobs()
    cases = [make_case(f"directed pv={pv} pr={pr}", jobs, p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    assert cases[0]["exp_len"].tolist()[:10] == [0, 0, 0, 0, 1, 0, 20, 19, 19, 27]
    # At the limits only lo <-> lo + 1 pair up (never hi + 1 -> lo); batch bmax pairs within itself.
    assert cases[0]["exp_len"].tolist()[12:] == [1, 1, 0, 0, 0, 2, 2, 8, 7, 7]
    m = run(model, cases, tmp_path)
    assert m["pairs"] == int(np.sum(cases[0]["exp_len"]))


def test_skid_buffers_fill_and_drain(model, tmp_path):
    """Every ready is a register behind a skid register: with ``pairs.ready`` held low, the unit
    takes exactly the beats its registers hold, then delivers them all, in order, under fixed
    back-pressure schedules that drop a ready while the other side offers a beat."""
    long_line = b0([[x, 0, 0] for x in range(200)])         # 25 beats a side, each step a tie
    jobs = [(long_line, long_line, (0, 0, 0))]
    cases = [
        # Held from the start: 12 steps fill the 10 match stages, `pairs` and its skid register;
        # each side then holds a current, a next and a skid beat: 15 beats taken, both inputs not
        # ready.
        make_case("held 40", jobs, hold=40),
        make_case("held 40, then ready 1 in 3", jobs, hold=40, ready_pattern=[0, 0, 1]),
        # Ready drops the cycle after each transfer while the inputs offer every cycle.
        make_case("ready 1 0", jobs + directed_jobs(), ready_pattern=[1, 0]),
        make_case("ready 1 1 0, valid 1 0 1 1", directed_jobs() + jobs, ready_pattern=[1, 1, 0],
                  valid_pattern=[1, 0, 1, 1]),
        # Back-to-back jobs with the output held, then long stalls between short bursts.
        make_case("jobs held 30, ready 4 of 13", directed_jobs(), hold=30,
                  ready_pattern=[1, 1, 1, 1] + [0] * 9),
    ]
    m = run(model, cases, tmp_path)
    held = Intersect(**PARAMS).latency + 1 + 3
    assert held == 15
    full = {"inputs": held, "outputs": held, "inputs__ready": 0, "outputs__ready": 0, "pairs__valid": 1}
    assert m["held"][:2] == [full, full]
    assert m["held"][2]["pairs__valid"] == 1 and m["held"][2]["inputs__ready"] == 0


def test_ready_is_a_register():
    """No ready (nor ``pairs.valid``) changes with the other ports inside a cycle: flipping
    ``pairs.ready`` and both ``valid`` inputs between clock edges leaves them as they were, in
    every state random traffic reaches (both skid registers and the output one full included)."""
    from amaranth.sim import Simulator

    dut = Intersect(**SMALL)
    rng = np.random.default_rng(5)
    seen = set()
    ports = [dut.inputs.ready, dut.outputs.ready, dut.pairs.valid]
    drives = [dut.pairs.ready, dut.inputs.valid, dut.outputs.valid]

    async def bench(ctx):
        for _ in range(400):
            for d, p in zip(drives, (0.2, 0.9, 0.9), strict=True):
                ctx.set(d, int(rng.random() < p))
            for port in (dut.inputs, dut.outputs):
                v = port.payload.as_value()
                ctx.set(v, int.from_bytes(rng.bytes(len(v) // 8 + 1)) % (1 << len(v)))
            before = [ctx.get(p) for p in ports]
            seen.add(tuple(before))
            for d in drives:
                ctx.set(d, 1 - ctx.get(d))
                assert [ctx.get(p) for p in ports] == before
                ctx.set(d, 1 - ctx.get(d))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert (0, 0, 1) in seen and (1, 1, 1) in seen


@pytest.mark.parametrize("stride, down", [(1, False), (2, False), (2, True)])
def test_scene_all_27_offsets(model, tmp_path, stride, down):
    """The RTL reproduces the kernel map of a random scene, every offset, with back-pressure; at
    stride 2 also with parity-last keys (``downsample``), as the mapping unit runs it."""
    c = random_scene(stride, 400)
    jobs = scene_jobs(c, stride)
    cases = [make_case(f"scene stride {stride}", jobs, seed=30 + stride, downsample=down),
             make_case(f"scene stride {stride} pv=0.7 pr=0.5", jobs, p_valid=0.7, p_ready=0.5, seed=40,
                       downsample=down)]
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


SMALL = dict(width=4, coord_bits=5, batch_bits=1, index_bits=10)


def test_small_key_format_width4(tmp_path):
    """A second configuration: 4 lanes and 5-bit coordinates, a cloud crowded against the
    coordinate limits (-16 and 15) in two batch elements, every offset at stride 1 and 2 (and 2 with
    parity-last keys)."""
    model = sim.build(Intersect(**SMALL))
    rng = np.random.default_rng(8)
    side = np.concatenate([np.arange(-16, -11), np.arange(11, 16)])
    grid = np.stack(np.meshgrid([0, 1], side, side, side, indexing="ij"), -1).reshape(-1, 4)
    c = grid[rng.permutation(len(grid))[:500]]
    cases = []
    for stride, down in ((1, False), (2, False), (2, True)):
        jobs = scene_jobs(c, stride)
        case = make_case(f"small stride {stride} down={down}", jobs, seed=60 + stride, params=SMALL, downsample=down)
        rtl_maps_match_software(case, c, stride)
        cases += [case, make_case(f"small stride {stride} down={down} pv=0.6 pr=0.6", jobs, p_valid=0.6,
                                  p_ready=0.6, seed=70 + stride, params=SMALL, downsample=down)]
    m = run(model, cases, tmp_path)
    assert m["pairs"] == sum(int(np.sum(cs["exp_len"])) for cs in cases[::2])
    assert m["keys"] / m["cycles"] > 0.8 * SMALL["width"]


def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        Intersect(width=3)
    with pytest.raises(ValueError, match="coord_bits must be >= 2"):
        Intersect(coord_bits=1)
    with pytest.raises(ValueError, match="must fit an int64"):
        Intersect(coord_bits=19)
    assert Intersect().name == "intersect_width8_coord_bits16_batch_bits8_index_bits20"
    # tb.job_cycles counts it after the last step: the merge of 16 keys (4 layers), 3 more stages
    assert (Intersect().latency, Intersect(width=4).latency) == (11, 9)
