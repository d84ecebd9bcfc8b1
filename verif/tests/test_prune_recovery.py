"""Recovery: fine-tuning, iterative vs one-shot schedules, L1/L2 regularisation, network slimming."""

import pytest
import torch
from torch import nn

from sw.models import train as train_mod
from sw.models.cnn import SmallCNN
from sw.models.mlp import MLP
from sw.models.train import TrainConfig, evaluate, finetune, train
from sw.prune.finetune import compare_schedules, prune_and_finetune, schedule_ratios, schedule_table
from sw.prune.granularity import Channel
from sw.prune.masks import get_mask
from sw.prune.pruner import Pruner
from sw.prune.regularize import (
    BNScalePenalty,
    L1Penalty,
    L2Penalty,
    accuracy_vs_sparsity,
    achievable_sparsity,
)
from sw.prune.slim import slim, slimming_layers, train_slimming
from verif.tests.prune_common import CFG, digits, trained_cnn, trained_mlp


def test_finetuning_recovers_accuracy_at_exact_sparsity():
    d = digits()
    m = trained_mlp((64, 32))
    base = evaluate(m, d.x_val, d.y_val)
    Pruner(m).prune(0.93)
    pruned = evaluate(m, d.x_val, d.y_val)
    assert pruned < base - 10
    counts = {n: int((get_mask(getattr(m, n)) == 0).sum()) for n in ("fc1", "fc2", "fc3")}
    finetune(m, d, CFG, 4, lr_scale=0.1, progress=False)
    recovered = evaluate(m, d.x_val, d.y_val)
    assert recovered > pruned + 10
    for n, c in counts.items():
        assert int((getattr(m, n).weight == 0).sum()) >= c == int((get_mask(getattr(m, n)) == 0).sum())


@pytest.mark.parametrize("scale", [0.1, 0.01])
def test_finetune_runs_at_the_scaled_learning_rate(monkeypatch, scale):
    m, d, seen = trained_mlp(), digits(), []
    monkeypatch.setattr(train_mod, "_train", lambda model, data, cfg, *a: seen.append(cfg) or [])
    finetune(m, d, CFG, 3, lr_scale=scale, progress=False)
    assert len(seen) == 1 and seen[0].lr == pytest.approx(CFG.lr * scale) and seen[0].epochs == 3
    with pytest.raises(ValueError, match="lr_scale"):
        finetune(trained_mlp(), digits(), CFG, 3, lr_scale=2.0)


def test_schedule_ratios():
    g = schedule_ratios(0.9, 3)
    assert g[-1] == pytest.approx(0.9) and g == sorted(g)
    assert (1 - g[0]) == pytest.approx(0.1 ** (1 / 3))      # the same fraction of survivors each round
    assert schedule_ratios(0.6, 3, "linear") == pytest.approx([0.2, 0.4, 0.6])
    per_layer = schedule_ratios({"fc1": 0.9, "fc2": 0.5}, 2)
    assert per_layer[-1] == pytest.approx({"fc1": 0.9, "fc2": 0.5})
    with pytest.raises(ValueError, match="steps"):
        schedule_ratios(0.9, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        schedule_ratios(1.1, 2)
    with pytest.raises(ValueError, match="schedule"):
        schedule_ratios(0.5, 2, "cubic")


def test_iterative_and_both_one_shot_controls_reach_the_same_sparsity():
    d = digits()
    m = trained_mlp((64, 32))
    cmp = compare_schedules(m, d, CFG, 0.8, steps=3, epochs_per_step=1, lr_scale=0.5, progress=False)
    it, one, equal = cmp.iterative, cmp.one_shot, cmp.equal_epochs
    assert [r["step"] for r in it.rows] == [1, 2, 3] and len(one.rows) == len(equal.rows) == 1
    sp = [r["sparsity"] for r in it.rows]
    assert sp == sorted(sp) and it.sparsity == one.sparsity == equal.sparsity == pytest.approx(0.8, abs=1e-4)
    assert (it.epochs, one.epochs, equal.epochs) == (3, 1, 3)
    assert get_mask(m.fc1) is None                       # the input model is untouched
    for key, r in (("iterative", it), ("one_shot", one), ("equal_epochs", equal)):
        assert r.test_acc == evaluate(cmp.models[key], d.x_test, d.y_test)
        assert r.rows[-1]["val_after_finetune"] > r.rows[-1]["val_after_prune"]
        assert float((get_mask(cmp.models[key].fc1) == 0).float().mean()) == pytest.approx(0.8, abs=1e-3)
    table = schedule_table(95.0, cmp.results)
    assert f"| iterative 3x1 ep | {it.sparsity:.2%} | 3 |" in table
    assert f"| one-shot 1 ep | {one.sparsity:.2%} | 1 |" in table and "| one-shot 3 ep |" in table
    with pytest.raises(ValueError, match="steps >= 2"):
        compare_schedules(m, d, CFG, 0.8, steps=1, epochs_per_step=1, progress=False)


def test_one_step_schedule_is_one_shot():
    d = digits()
    r = prune_and_finetune(trained_mlp(), d, CFG, {"fc1": 0.5}, 1, 1, progress=False)
    assert r.name == "one-shot" and len(r.rows) == 1


def test_penalties_compute_what_they_say():
    m = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        m[2].weight.copy_(torch.tensor([[3.0, -1.0]]))
        m[1].weight.copy_(torch.tensor([0.5, -0.25]))
    assert L1Penalty(0.1)(m).item() == pytest.approx(0.1 * 7.5)
    assert L2Penalty(0.1)(m).item() == pytest.approx(0.1 * 15.25)
    assert BNScalePenalty(2.0)(m).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="no BatchNorm"):
        BNScalePenalty(1.0)(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="strength"):
        L1Penalty(-1.0)


def test_l1_training_drives_weights_to_zero_and_l2_shrinks_them():
    d = digits()
    cfg = TrainConfig(epochs=4, lr=0.1, seed=0)
    runs = {}
    for name, pen in (("none", []), ("l1", [L1Penalty(1e-3)]), ("l2", [L2Penalty(1e-2)])):
        torch.manual_seed(0)
        m = MLP(d.input_shape, (64, 32), d.classes)
        train(m, d, cfg, penalties=pen, progress=False)
        w = torch.cat([p.detach().flatten() for p in m.parameters()])
        runs[name] = (m, w)
    l1n = {k: v[1].abs().sum().item() for k, v in runs.items()}
    l2n = {k: v[1].pow(2).sum().item() for k, v in runs.items()}
    small = {k: (v[1].abs() < 1e-2).float().mean().item() for k, v in runs.items()}
    assert l1n["l1"] < 0.8 * l1n["none"] and small["l1"] > small["none"] + 0.1
    assert l2n["l2"] < 0.7 * l2n["none"] and l2n["l2"] < l2n["l1"]
    accs = accuracy_vs_sparsity(runs["l1"][0], d, [0.5, 0.99], scope="global")
    assert accs[0] > accs[1]


def test_achievable_sparsity():
    ratios = [0.5, 0.7, 0.9, 0.95]
    assert achievable_sparsity(ratios, [95.0, 94.8, 94.0, 80.0], 95.0, 1.0) == 0.9
    assert achievable_sparsity(ratios, [95.0, 94.8, 94.0, 80.0], 95.0, 0.5) == 0.7
    assert achievable_sparsity(ratios, [90.0, 94.8, 94.0, 80.0], 95.0, 0.5) == 0.0


def test_slimming_penalty_shrinks_bn_scales_and_slim_removes_channels():
    d = digits()
    cfg = TrainConfig(epochs=2, lr=0.05, seed=0)
    gammas = {}
    for strength in (0.0, 3e-2):
        torch.manual_seed(0)
        m = SmallCNN(d.input_shape, channels=(8, 16), kernel_size=3, padding=1, fc=(32, 24))
        train_slimming(m, d, cfg, strength, progress=False)
        gammas[strength] = torch.cat([m.bn1.weight.detach(), m.bn2.weight.detach()]).abs().mean().item()
    assert gammas[3e-2] < 0.9 * gammas[0.0]
    assert slimming_layers(m) == ["conv1", "conv2"]
    res = slim(m, d, cfg, 0.5, finetune_epochs=1, progress=False)
    assert m.conv1.out_channels + m.conv2.out_channels == 12
    assert res.removal.after.macs < res.removal.before.macs and res.removal.changed
    assert res.test_after_finetune == evaluate(m, d.x_test, d.y_test)
    assert evaluate(m, d.x_val, d.y_val) > res.val_after_prune + 10
    with pytest.raises(ValueError, match="no removable layer followed by a BatchNorm"):
        slimming_layers(trained_mlp())


def test_cnn_recovers_after_channel_removal():
    d = digits()
    m = trained_cnn()
    p = Pruner(m, Channel(), layers=["conv1", "conv2"])
    p.prune(0.5)
    p.remove()
    pruned = evaluate(m, d.x_val, d.y_val)
    finetune(m, d, TrainConfig(epochs=3, lr=0.05), 3, lr_scale=0.1, progress=False)
    assert evaluate(m, d.x_val, d.y_val) >= pruned
