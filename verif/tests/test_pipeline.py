"""The demo's compression pipeline (sw/prune/pipeline.py) on a stub recipe: LeNet-300-100 on the
8×8 digits, a few epochs, cached in a temporary directory."""

import numpy as np
import pytest

from sw.models import data as datasets
from sw.models.io import load_model
from sw.models.mlp import lenet_300_100
from sw.models.train import TrainConfig, evaluate
from sw.prune.pipeline import DEEP_COMPRESSION_RATIOS, FILES, PipelineConfig, compressed_lenet

STUB = PipelineConfig(data="digits", baseline=TrainConfig(epochs=4, lr=0.1, weight_decay=1e-4), steps=2,
                      epochs_per_step=1, share_epochs=1)


def test_default_ratios_remove_at_least_90_percent_of_lenet():
    m = lenet_300_100()
    sizes = {n: getattr(m, n).weight.numel() for n in ("fc1", "fc2", "fc3")}
    assert set(sizes) == {n for n, _ in DEEP_COMPRESSION_RATIOS}
    removed = sum(round(r * sizes[n]) for n, r in DEEP_COMPRESSION_RATIOS)
    assert removed / sum(sizes.values()) >= 0.9
    cfg = PipelineConfig()
    assert (cfg.model, cfg.data, cfg.bits) == ("lenet300", "mnist", 4)


def test_pipeline_compresses_exports_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path))
    net, info = compressed_lenet(progress=False, config=STUB)
    assert info["cached"] is False and info["path"] == str(STUB.cache_path())
    d = datasets.load("digits")

    # >= 90 % of the weights of all three layers removed; per-layer densities as targeted.
    nonzero = sum(int(np.count_nonzero(ly.index)) for ly in net.layers)
    weights = sum(ly.index.size for ly in net.layers)
    assert info["density"] == pytest.approx(nonzero / weights) and info["density"] <= 0.10
    targets = dict(DEEP_COMPRESSION_RATIOS)
    for ly, row in zip(net.layers, info["layers"], strict=True):
        assert row["name"] == ly.name and row["shape"] == list(ly.shape)
        assert row["density"] <= 1 - targets[ly.name] + 1 / ly.index.size   # rounding to 0 only prunes more
        # 4-bit sharing: at most 16 int16 codebook entries, entry 0 = 0, the rest distinct.
        cb = ly.codebook
        assert row["codebook_size"] == cb.size <= 16 and cb.dtype == np.int16 and cb[0] == 0
        assert np.unique(cb[1:]).size == cb.size - 1 and 0 not in cb[1:]
        assert ly.index.dtype == np.uint8 and ly.index.max() < cb.size
        assert 0 <= ly.shift <= 15

    # The layers chain: 64 inputs → 300 → 100 → 10, ReLU between, in_exp = previous out_exp.
    assert [ly.shape for ly in net.layers] == [(300, 64), (100, 300), (10, 100)]
    assert [ly.relu for ly in net.layers] == [True, True, False]
    assert net.layers[0].in_exp == net.input_exp
    for prev, ly in zip(net.layers, net.layers[1:], strict=False):
        assert ly.shape[1] == prev.shape[0] and ly.in_exp == prev.out_exp
    out = net.forward(net.quantize_input(d.x_test[:5]))
    assert out.shape == (5, 10)

    acc = info["accuracy"]
    assert set(acc) == {"dense", "pruned", "shared_before_finetune", "shared", "integer"}
    assert acc["integer"] == pytest.approx(net.accuracy(d.x_test, d.y_test))
    assert acc["integer"] > 80 and abs(acc["integer"] - acc["shared"]) <= 3

    # The cache holds the entry's files and nothing half-written; the float model reloads.
    entries = list((tmp_path / "pipelines").iterdir())
    assert entries == [STUB.cache_path()] and sorted(f.name for f in entries[0].iterdir()) == sorted(FILES)
    model, _ = load_model(entries[0] / "model.safetensors")
    assert evaluate(model, d.x_test, d.y_test) == pytest.approx(acc["shared"])

    # Second call: loaded, the same network and report.
    net2, info2 = compressed_lenet(progress=False, config=STUB)
    assert info2["cached"] is True
    assert info2["accuracy"] == acc and info2["layers"] == info["layers"]
    for a, b in zip(net.layers, net2.layers, strict=True):
        assert np.array_equal(a.index, b.index) and np.array_equal(a.codebook, b.codebook) and a.shift == b.shift

    # A damaged entry is rebuilt in place, not trusted.
    (STUB.cache_path() / "export.npz").write_bytes(b"not an npz")
    net3, info3 = compressed_lenet(progress=False, config=STUB)
    assert info3["cached"] is False
    assert all(np.array_equal(a.index, b.index) for a, b in zip(net.layers, net3.layers, strict=True))
    assert list((tmp_path / "pipelines").iterdir()) == [STUB.cache_path()]


def test_config_key_and_validation():
    assert PipelineConfig().key() == PipelineConfig().key()
    assert PipelineConfig(steps=4).key() != PipelineConfig().key()
    assert STUB.key() != PipelineConfig().key()
    for bad in ({"steps": 0}, {"bits": 0}, {"epochs_per_step": -1}, {"lr_scale": 0}, {"ratios": ()},
                {"model": "vgg"}, {"data": "cifar"}, {"calib_samples": 0}):
        with pytest.raises(ValueError):
            PipelineConfig(**bad)
