"""Sensitivity scans and the per-layer ratio helper."""

import numpy as np
import pytest
import torch

from sw.models.train import evaluate
from sw.prune.granularity import Channel
from sw.prune.masks import get_mask
from sw.prune.sensitivity import SensitivityResult, sensitivity_scan
from verif.tests.prune_common import digits, trained_cnn, trained_mlp, trained_resnet

RATIOS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def synthetic():
    flat = [90.0] * 8 + [89.0]                                  # barely sensitive
    steep = [90.0, 89.0, 87.0, 84.0, 80.0, 70.0, 60.0, 40.0, 20.0]
    mid = [90.0, 90.0, 89.5, 89.0, 88.0, 86.0, 83.0, 78.0, 70.0]
    return SensitivityResult(90.0, RATIOS, {"a": flat, "b": steep, "c": mid}, {"a": 1000, "b": 1000,
                                                                               "c": 2000},
                             "fine", "l1", "val")


@pytest.mark.parametrize("target", [0.1, 0.3, 0.5, 0.7, 0.85])
def test_ratios_hit_the_target_and_flat_curves_prune_more(target):
    s = synthetic()
    r = s.ratios_for(target)
    overall = (r["a"] * 1000 + r["b"] * 1000 + r["c"] * 2000) / 4000
    assert overall == pytest.approx(target, abs=1e-9)
    assert r["a"] >= r["c"] >= r["b"]
    assert all(0.0 <= v <= 0.9 for v in r.values())


def test_ratios_grow_with_the_target_and_unreachable_targets_fail():
    s = synthetic()
    lo, hi = s.ratios_for(0.4), s.ratios_for(0.6)
    assert all(hi[n] >= lo[n] for n in lo)
    with pytest.raises(ValueError, match="out of reach.*0.9"):
        s.ratios_for(0.95)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        s.ratios_for(1.2)


def test_one_drop_threshold_gives_every_layer_its_ratio():
    s = synthetic()
    assert s.ratios_at(-1.0) == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert s.ratios_at(s.max_drop()) == {"a": 0.9, "b": 0.9, "c": 0.9}
    r = s.ratios_at(2.0)        # b falls 1 point at 0.2, 3 at 0.3; c 2 at 0.5; a never passes 1
    assert r["a"] == 0.9 and r["b"] == pytest.approx(0.2 + 0.1 / 2) and r["c"] == pytest.approx(0.5)
    lo, hi = s.ratios_at(1.0), s.ratios_at(5.0)
    assert all(hi[n] >= lo[n] for n in lo)


def test_scan_measures_each_layer_alone_and_leaves_the_model(tmp_path):
    d = digits()
    m = trained_mlp((64, 32))
    w = m.fc1.weight.detach().clone()
    res = sensitivity_scan(m, d, ratios=[0.5, 0.9, 0.99], progress=False)
    assert torch.equal(m.fc1.weight, w) and get_mask(m.fc1) is None
    assert res.base_acc == evaluate(m, d.x_val, d.y_val)
    assert list(res.accuracy) == ["fc1", "fc2", "fc3"] and res.weights["fc1"] == 64 * 64
    assert all(len(v) == 3 for v in res.accuracy.values())
    assert res.drops("fc3")[-1] > 20           # the classifier cannot lose 99 % of its weights
    assert np.all(np.diff(res.drops("fc3")) >= -2)
    table = res.table()
    assert "| fc1 | 4,096 |" in table and "0.99" in table
    res.plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert set(res.to_dict()) >= {"base_acc", "ratios", "accuracy", "drops"}


def test_channel_sensitivity_and_bad_ratios():
    d = digits()
    res = sensitivity_scan(trained_cnn(), d, layers=["conv1", "conv2"], ratios=[0.25, 0.5],
                           granularity=Channel(),
                           progress=False)
    assert res.granularity == "channel" and list(res.accuracy) == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="increasing"):
        sensitivity_scan(trained_mlp(), d, ratios=[0.5, 0.1], progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sensitivity_scan(trained_mlp(), d, ratios=[0.5, 1.0], progress=False)
    with pytest.raises(ValueError, match="unknown layer"):
        sensitivity_scan(trained_mlp(), d, layers=["fc7"], progress=False)


def test_batchnorm_is_re_estimated_after_each_pruning_when_asked():
    """On a ResNet, each scanned accuracy with ``bn_x`` is that of the pruned copy after
    re-estimating its BatchNorm on those samples; the model's own statistics are untouched."""
    import copy

    from sw.models.train import recalibrate_bn
    from sw.prune.criteria import L1
    from sw.prune.pruner import Pruner

    d = digits()
    m = trained_resnet()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x_bn = d.x_train[:200]
    layers = ["conv1", "layers.0.0.conv1"]
    stale = sensitivity_scan(m, d, layers=layers, ratios=[0.5, 0.75], granularity=Channel(), criterion=L1(),
                             progress=False)
    res = sensitivity_scan(m, d, layers=layers, ratios=[0.5, 0.75], granularity=Channel(), criterion=L1(),
                           progress=False, bn_x=x_bn)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    assert res.bn_samples == 200 and stale.bn_samples == 0
    assert "BatchNorm re-estimated on 200" in res.table() and "BatchNorm" not in stale.table()
    for n in layers:
        for r, acc in zip(res.ratios, res.accuracy[n], strict=True):
            c = copy.deepcopy(m)
            Pruner(c, Channel(), L1(), [n]).prune(r)
            recalibrate_bn(c, x_bn)
            assert acc == evaluate(c, d.x_val, d.y_val)
    assert res.accuracy != stale.accuracy
    # conv1 (the stem) feeds the residual stream: stale statistics cost more there than re-estimated ones
    assert res.accuracy["conv1"][0] > stale.accuracy["conv1"][0] + 20
