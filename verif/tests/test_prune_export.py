"""Integer export for EIE: round trip through pack_eie, and the integer forward pass against a
reference computed from the packed PE images with docs/spec.md §1's output stage."""

import numpy as np
import pytest
import torch

from sw.formats import OUT_MAX, OUT_MIN
from sw.models.cnn import SmallCNN
from sw.models.mlp import MLP
from sw.models.train import evaluate, finetune
from sw.pack import pack_eie, unpack_eie
from sw.prune.export import IntegerLayer, IntegerNetwork, export_integer, linear_chain, storage_bits
from sw.prune.pruner import Pruner
from sw.prune.share import share_weights
from verif.tests.prune_common import CFG, digits, trained_mlp

_NET = {}


def exported():
    """(float model, integer network) for a pruned, 4-bit shared, fine-tuned digits MLP."""
    if not _NET:
        d = digits()
        m = trained_mlp((64, 32))
        Pruner(m).prune({"fc1": 0.85, "fc2": 0.8, "fc3": 0.5})
        finetune(m, d, CFG, 2, progress=False)
        share_weights(m, bits=4)
        finetune(m, d, CFG, 1, progress=False)
        _NET["v"] = (m, export_integer(m, d.x_train))
    return _NET["v"]


def eie_reference(packed, codebook, x, shift, relu):
    """docs/spec.md §2/§1 by hand: for each nonzero input, walk every PE's column entries, accumulate."""
    acc = [0] * (packed.n_pe * packed.local_rows)
    for j, xj in enumerate(int(v) for v in x):
        if xj == 0:
            continue
        for k, pe in enumerate(packed.pe):
            row = None
            for e in range(int(pe.col_ptr[j]), int(pe.col_ptr[j + 1])):
                rel = int(pe.rel_index[e])
                row = rel if row is None else row + 1 + rel
                acc[row * packed.n_pe + k] += int(codebook[int(pe.weight_idx[e])]) * xj
    out = []
    for a in acc[: packed.rows]:
        y = min(max(a >> shift, -(2 ** 15)), 2 ** 15 - 1)
        out.append(max(y, 0) if relu else y)
    return out


def test_export_is_what_pack_eie_consumes_and_round_trips():
    m, net = exported()
    assert [ly.name for ly in net.layers] == ["fc1", "fc2", "fc3"]
    assert [ly.relu for ly in net.layers] == [True, True, False]
    for ly, mod in zip(net.layers, (m.fc1, m.fc2, m.fc3), strict=True):
        assert ly.index.dtype == np.uint8 and ly.index.shape == tuple(mod.weight.shape)
        assert ly.codebook.dtype == np.int16 and ly.codebook[0] == 0 and len(ly.codebook) <= 16
        nz = ly.codebook[1:]
        assert np.all(nz != 0) and np.unique(nz).size == nz.size
        assert np.array_equal(ly.index == 0, mod.weight.detach().numpy() == 0)
        assert 0 <= ly.shift <= 15                     # what the output stage holds (docs/spec.md §3.5)
        for n_pe in (1, 3, 4):
            packed = pack_eie(ly.index, n_pe)
            assert np.array_equal(unpack_eie(packed), ly.index)
            by_value = pack_eie(ly.weights(), n_pe, codebook=ly.codebook)
            assert np.array_equal(by_value.weights(), ly.weights())
        # The integer codebook tracks the float one: C ≈ c · 2**weight_exp.
        w = mod.weight.detach().double().numpy() * 2.0 ** ly.weight_exp
        assert np.max(np.abs(ly.weights() - w)) <= 0.5 + 1e-9


def test_integer_forward_equals_the_packed_reference():
    _, net = exported()
    d = digits()
    a = net.quantize_input(d.x_test[:6])
    assert a.min() >= 0 and a.max() <= OUT_MAX
    for ly in net.layers:
        packed = pack_eie(ly.index, 4)
        y = ly.forward(a)
        for i in range(a.shape[0]):
            assert y[i].tolist() == eie_reference(packed, ly.codebook, a[i], ly.shift, ly.relu)
        a = y
    assert np.array_equal(a, net.forward(net.quantize_input(d.x_test[:6])))


def test_integer_pipeline_tracks_the_float_model():
    m, net = exported()
    d = digits()
    float_acc, int_acc = evaluate(m, d.x_test, d.y_test), net.accuracy(d.x_test, d.y_test)
    assert abs(float_acc - int_acc) <= 0.6
    agree = np.mean(net.predict(d.x_test) == m(torch.as_tensor(d.x_test)).argmax(1).numpy())
    assert agree >= 0.99
    # Each layer's integers are the float activations scaled by 2**out_exp.
    a = net.quantize_input(d.x_test[:50])
    h = torch.as_tensor(d.x_test[:50]).flatten(1)
    for ly, mod in zip(net.layers, (m.fc1, m.fc2, m.fc3), strict=True):
        a = ly.forward(a)
        h = mod(h).detach()
        h = torch.relu(h) if ly.relu else h
        scale = 2.0 ** ly.out_exp
        assert np.max(np.abs(a / scale - h.detach().numpy())) < 0.01 * float(h.abs().max())


def test_output_stage_floors_saturates_and_relus():
    idx = np.array([[1, 2], [1, 1], [2, 2]], dtype=np.uint8)
    ly = IntegerLayer("t", idx, np.array([0, 3, -5], dtype=np.int16), shift=1, relu=False, in_exp=0,
                      weight_exp=0, out_exp=0)
    x = np.array([[1, 2], [30000, 30000], [1, 0]])
    y = ly.forward(x)
    assert y[0].tolist() == [(3 - 10) >> 1, 4, -8] == [-4, 4, -8]          # floor, not truncation
    assert y[1].tolist() == [-30000, OUT_MAX, OUT_MIN]                      # saturation
    assert y[2].tolist() == [1, 1, -3]
    relu = IntegerLayer("t", idx, ly.codebook, 1, True, 0, 0, 0)
    assert relu.forward(x)[0].tolist() == [0, 4, 0]
    with pytest.raises(ValueError, match="integers"):
        ly.forward(np.array([0.5, 1.0]))


def test_save_load_round_trip(tmp_path):
    _, net = exported()
    path = net.save(tmp_path / "e.npz")
    back = IntegerNetwork.load(path)
    assert back.input_exp == net.input_exp
    for a, b in zip(net.layers, back.layers, strict=True):
        assert a.name == b.name and a.shift == b.shift and a.relu == b.relu
        assert np.array_equal(a.index, b.index) and np.array_equal(a.codebook, b.codebook)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        net.save(path)
    net.save(path, force=True)


def test_storage_counts_entries_padding_and_codebooks():
    idx = np.zeros((40, 2), dtype=np.uint8)
    idx[20, 0] = 3          # 20 zeros above: one padding entry, then rel 4
    idx[0, 1] = 1
    idx[1, 1] = 2
    ly = IntegerLayer("t", idx, np.array([0, 1, 2, 3], dtype=np.int16), 0, True, 0, 0, 0)
    st = storage_bits(IntegerNetwork((ly,), 0), n_pe=1)
    row = st["layers"][0]
    assert row["entries"] == 4 and row["padding"] == 1 and row["nonzero"] == 3
    assert row["compressed_bits"] == 4 * 8 + 4 * 16
    assert st["ratio"] == pytest.approx(80 * 32 / (4 * 8 + 64))
    _, net = exported()
    full = storage_bits(net, 1)
    assert full["ratio"] > 5 and full["ratio_with_col_ptr"] < full["ratio"]


def test_export_refuses_what_eie_cannot_run():
    d = digits()
    with pytest.raises(ValueError, match="not weight-shared"):
        export_integer(trained_mlp(), d.x_train[:10])
    biased = MLP(d.input_shape, (16,), bias=True)
    with pytest.raises(ValueError, match="fc1 has a bias"):
        export_integer(biased, d.x_train[:10])
    with pytest.raises(ValueError, match="chains of Linear and ReLU.*conv1"):
        linear_chain(SmallCNN(d.input_shape, kernel_size=3, padding=1))
