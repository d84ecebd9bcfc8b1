"""The EIE speedup breakdown (sw/cyclemodel/speedup.py, docs/spec.md §3.6): exact cycles of hand-worked
layers, and the ordering of the four schedules on random ones."""

import numpy as np
import pytest

from sw.cyclemodel.eie import array_timing, layer_work
from sw.cyclemodel.speedup import SCHEDULES, layer_breakdown, network_breakdown, rows_per_pe, schedule_work, total
from sw.pack import pack_eie
from sw.prune.export import IntegerLayer, IntegerNetwork

# docs/spec.md §3.6's example: PE 0 holds rows 0, 2 (column entries [2, 1, 0, 0]), PE 1 rows 1, 3 ([0, 0, 0, 1]).
W4 = np.array([[1, 0, 0, 0],
               [0, 0, 0, 0],
               [1, 1, 0, 0],
               [0, 0, 0, 1]])


def test_hand_worked_4x4():
    # Broadcasts (fires) in cycles 6, 7, ... (emit 5, 6, ...), pushed 2 cycles later, popped 1 after that,
    # then 6 pointer stages: take_i = max(pop_i + 6, take_{i-1} + max(e, 1)) with no queue stop here;
    # end = take + e + 8 (take when e = 0); cycles = max end + 1 + 2 (the done reduction).
    # (a) 2 entries per column in both PEs, 4 columns: take 15, 17, 19, 21; end 31 -> 34 = 26 + 2·4.
    # (b) PE 0 takes 15 (2), 17 (1), 18, 19 -> end 26; PE 1 takes 15, 16, 17, 18 (1) -> end 27 -> 30.
    # (c) columns 0 and 3, 2 entries each: take 15, 17 -> end 27 -> 30 = 26 + 2·2.
    # (d) PE 0: column 0 (2) at 15 -> end 25; PE 1: column 3 (1) at 16 -> end 25 -> 28.
    b = layer_breakdown(pack_eie(W4, 2), [5, 0, 0, 7])
    assert b.cycles == {"dense": 34, "weight_sparse": 30, "act_sparse": 30, "both": 28}
    assert b.speedup == pytest.approx({"dense": 1.0, "weight_sparse": 34 / 30, "act_sparse": 34 / 30,
                                       "both": 34 / 28})
    assert (b.rows, b.cols, b.n_pe, b.weights, b.nonzero_weights, b.entries, b.acts, b.nonzero_acts) == \
        (4, 4, 2, 16, 4, 4, 4, 2)
    assert b.weight_density == 0.25 and b.act_density == 0.5
    # No nonzero activation: (c) and (d) only scan the one word, 5 + 1 + 1 + 2 cycles (docs/spec.md §3.6).
    z = layer_breakdown(pack_eie(W4, 2), [0, 0, 0, 0])
    assert z.cycles == {"dense": 34, "weight_sparse": 30, "act_sparse": 9, "both": 9}


def test_hand_worked_with_zero_words():
    # 3×20, n_pe = 2 (rows_k = 2, 1), W[0, 3] = 1 (PE 0), W[1, 17] = 5 (PE 1), only x[17] nonzero (LNZD word 2).
    w = np.zeros((3, 20), dtype=np.int64)
    w[0, 3], w[1, 17] = 1, 5
    x = np.zeros(20, dtype=np.int64)
    x[17] = 9
    b = layer_breakdown(pack_eie(w, 2), x, queue_depth=32, lnzd_width=8)
    # (a) 20 columns broadcast back to back, PE 0 2 entries each: 26 + 2·20.
    # (b) every column 1 cycle in both PEs: take_i = 15 + i; PE 1's entry at i = 17: 32 + 1 + 8 = 41 -> 44.
    # (c) emit 5 + 2 = 7, fire 8, push 10, pop 11, take 17, PE 0's 2 entries: end 27 -> 30 (= 26 + w_0 + 2·1).
    # (d) PE 1's 1 entry taken at 17: end 26 -> 29.
    assert b.cycles == {"dense": 66, "weight_sparse": 44, "act_sparse": 30, "both": 29}


def test_schedules_feed_the_cycle_model():
    p = pack_eie(W4, 2)
    x = np.array([5, 0, 0, 7])
    assert np.array_equal(rows_per_pe(4, 2), [2, 2]) and np.array_equal(rows_per_pe(5, 4), [2, 1, 1, 1])
    assert np.array_equal(rows_per_pe(2, 4), [1, 1, 0, 0])
    entries, cols = schedule_work(p, x, "both")
    ref = layer_work(p, x)
    assert np.array_equal(entries, ref[0]) and np.array_equal(cols, ref[1])
    entries, cols = schedule_work(p, x, "weight_sparse")
    assert np.array_equal(cols, np.arange(4)) and np.array_equal(entries, [[2, 1, 0, 0], [0, 0, 0, 1]])
    entries, cols = schedule_work(p, x, "act_sparse")
    assert np.array_equal(cols, [0, 3]) and np.array_equal(entries, [[2, 2], [2, 2]])
    entries, cols = schedule_work(p, x, "dense")
    assert np.array_equal(cols, np.arange(4)) and np.array_equal(entries, np.full((2, 4), 2))
    with pytest.raises(ValueError, match="schedule"):
        schedule_work(p, x, "sparse")
    with pytest.raises(ValueError, match="4 inputs"):
        layer_breakdown(p, [1, 2, 3])


@pytest.mark.parametrize("seed", range(4))
def test_ordering_and_dense_closed_form_on_random_layers(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        rows, cols, n_pe = int(rng.integers(1, 80)), int(rng.integers(1, 50)), int(rng.integers(1, 9))
        qd, lw = int(rng.integers(1, 9)), int(2 ** rng.integers(1, 5))
        w = np.where(rng.random((rows, cols)) < rng.uniform(0, 1), rng.integers(1, 16, (rows, cols)), 0)
        x = np.where(rng.random(cols) < rng.uniform(0, 1), rng.integers(-5, 6, cols), 0)
        c = layer_breakdown(pack_eie(w, n_pe), x, queue_depth=qd, lnzd_width=lw).cycles
        assert c["both"] <= c["weight_sparse"] <= c["dense"]
        assert c["both"] <= c["act_sparse"] <= c["dense"]
        r = -(-rows // n_pe)
        if qd >= 2:
            assert c["dense"] == 26 + r * cols
        nz = np.flatnonzero(x)
        if nz.size:
            assert c["act_sparse"] >= 26 + nz[0] // lw + r * nz.size


def test_network_breakdown_runs_each_layer_on_the_previous_outputs():
    rng = np.random.default_rng(3)
    cb = np.arange(16, dtype=np.int16) - 7
    cb[0], cb[7] = 0, 9
    layers = []
    for name, (rows, cols) in (("fc1", (12, 20)), ("fc2", (5, 12))):
        idx = np.where(rng.random((rows, cols)) < 0.3, rng.integers(1, 16, (rows, cols)), 0).astype(np.uint8)
        layers.append(IntegerLayer(name, idx, cb, 2, name == "fc1", 0, 0, 0))
    net = IntegerNetwork(tuple(layers), 0)
    a = np.where(rng.random(20) < 0.5, rng.integers(0, 50, 20), 0)
    per_layer, tot = network_breakdown(net, a, 4)
    h = layers[0].forward(a)
    for ly, x, b in zip(layers, (a, h), per_layer, strict=True):
        p = pack_eie(ly.index, 4)
        assert b.name == ly.name and b.nonzero_acts == np.count_nonzero(x)
        assert b.cycles["both"] == array_timing(*layer_work(p, x), p.cols, queue_depth=8, lnzd_width=8).cycles
    assert tot.cycles == {s: sum(b.cycles[s] for b in per_layer) for s in SCHEDULES}
    assert (tot.rows, tot.cols, tot.acts, tot.weights) == (5, 20, 32, 12 * 20 + 5 * 12)
    assert tot.speedup["dense"] == 1.0 and tot.to_dict()["cycles"] == tot.cycles
    with pytest.raises(ValueError):
        total([])
