"""Models, seeded training and the baseline cache."""

from pathlib import Path

import pytest
import torch

from sw.models import registry
from sw.models import train as train_mod
from sw.models.cnn import SmallCNN, small_cnn
from sw.models.mlp import MLP, lenet_300_100
from sw.models.train import TrainConfig, cache_dir, evaluate, pretrained, train
from verif.tests.prune_common import digits


def test_lenet_300_100_shape_and_size():
    m = lenet_300_100()
    assert [tuple(p.shape) for p in m.parameters()] == [(300, 784), (100, 300), (10, 100)]
    assert sum(p.numel() for p in m.parameters()) == 266_200
    assert m(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert m.config == {"input_shape": [1, 28, 28], "hidden": [300, 100], "classes": 10, "bias": False}


def test_cnn_has_batchnorm_and_fits_both_datasets():
    big, small = small_cnn((1, 28, 28)), small_cnn((1, 8, 8))
    assert big(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert small(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert big.fc1.in_features == 32 * 4 * 4 and small.fc1.in_features == 32 * 2 * 2
    assert isinstance(big.bn1, torch.nn.BatchNorm2d) and big.conv1.bias is None
    with pytest.raises(ValueError, match="too small"):
        SmallCNN((1, 8, 8), kernel_size=5, padding=0)
    with pytest.raises(ValueError, match="widths"):
        MLP((1, 8, 8), (0,))
    with pytest.raises(ValueError, match="unknown model"):
        registry.build("vgg", (1, 8, 8), 10)


def test_training_is_seeded_and_reproducible():
    d = digits()
    cfg = TrainConfig(epochs=2, lr=0.1, seed=3)
    runs = []
    for seed in (3, 3, 4):
        m = registry.build("lenet300", d.input_shape, d.classes, seed=seed)
        hist = train(m, d, TrainConfig(epochs=2, lr=0.1, seed=seed), progress=False)
        runs.append((m.state_dict(), hist))
    for k in runs[0][0]:
        assert torch.equal(runs[0][0][k], runs[1][0][k])
    assert runs[0][1] == runs[1][1]
    assert not torch.equal(runs[0][0]["fc1.weight"], runs[2][0]["fc1.weight"])
    assert runs[0][1][-1]["val_acc"] > 60.0 and len(runs[0][1]) == cfg.epochs


def test_training_learns():
    d = digits()
    m = registry.build("lenet300", d.input_shape, d.classes, seed=0)
    chance = evaluate(m, d.x_test, d.y_test)
    hist = train(m, d, TrainConfig(epochs=3, lr=0.1), progress=False)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert evaluate(m, d.x_test, d.y_test) > max(85.0, chance + 50)


def test_bad_train_configs():
    for bad in ({"epochs": -1}, {"lr": 0.0}, {"batch_size": 0}, {"schedule": "step"}, {"threads": 0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SPARSEHW_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == Path(tmp_path) / ".cache" / "sparsehw"


def test_pretrained_trains_once_then_loads_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path))
    cfg = TrainConfig(epochs=1, lr=0.1)
    m1, info1 = pretrained("lenet300", "digits", cfg, progress=False)
    files = list((tmp_path / "baselines").glob("*.safetensors"))
    assert len(files) == 1 and info1["path"] == str(files[0])

    def no_training(*a, **k):
        raise AssertionError("a cached baseline must not be retrained")

    monkeypatch.setattr(train_mod, "train", no_training)
    m2, info2 = pretrained("lenet300", "digits", cfg, progress=False)
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    assert info2["test_acc"] == info1["test_acc"]
    # A different recipe is a different cache entry.
    assert train_mod.baseline_key("lenet300", "digits", cfg) != train_mod.baseline_key(
        "lenet300", "digits", TrainConfig(epochs=2, lr=0.1))
