"""Fine-grained pruning: exact mask sparsity, persistent masks, reports and bad input."""

import copy
import math

import pytest
import torch
from torch import nn

from sw.models.train import evaluate, finetune
from sw.prune.criteria import L2, BNScale
from sw.prune.granularity import FineGrained, granularity
from sw.prune.masks import get_mask
from sw.prune.pruner import Pruner
from verif.tests.prune_common import CFG, digits, trained_mlp

LAYERS = ("fc1", "fc2", "fc3")


def masked(m, name):
    return int((get_mask(getattr(m, name)) == 0).sum())


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.37, 0.5, 0.9, 0.999])
def test_mask_sparsity_is_exact_and_keeps_the_largest(ratio):
    m = trained_mlp()
    ref = copy.deepcopy(m)
    report = Pruner(m).prune(ratio)
    for name in LAYERS:
        w0 = getattr(ref, name).weight.detach()
        w, mask = getattr(m, name).weight.detach(), get_mask(getattr(m, name)).bool()
        assert int((~mask).sum()) == round(ratio * w0.numel())
        assert torch.all(w[~mask] == 0)
        assert torch.equal(w[mask], w0[mask])
        if 0 < ratio and mask.any():
            assert w0[~mask].abs().max() <= w0[mask].abs().min()
    assert report.after.masked_sparsity == pytest.approx(
        sum(round(ratio * getattr(ref, n).weight.numel()) for n in LAYERS) / report.after.prunable_weights)
    assert report.changed == (ratio > 0)


def test_ties_keep_the_lower_index():
    m = nn.Sequential(nn.Linear(8, 1, bias=False))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    Pruner(m, example_input=torch.zeros(1, 8)).prune(0.25)
    assert get_mask(m[0]).flatten().tolist() == [1, 1, 1, 1, 1, 1, 0, 0]


def test_per_layer_ratios_and_untouched_layers():
    m = trained_mlp()
    Pruner(m).prune({"fc1": 0.8, "fc3": 0.5})
    assert masked(m, "fc1") == round(0.8 * m.fc1.weight.numel())
    assert masked(m, "fc3") == round(0.5 * m.fc3.weight.numel())
    assert get_mask(m.fc2) is None


def test_masks_only_grow_and_a_lower_ratio_changes_nothing():
    m = trained_mlp()
    p = Pruner(m)
    p.prune(0.5)
    first = get_mask(m.fc1).clone()
    r = p.prune(0.8)
    assert torch.all(get_mask(m.fc1) <= first) and r.changed
    again = p.prune(0.3)
    assert not again.changed
    assert "changed nothing" in again.summary()
    assert any("below its current sparsity" in n for n in again.notes)
    assert p.prune(0.8).changed is False


def test_global_scope_ranks_across_layers_exactly():
    m = trained_mlp()
    ref = copy.deepcopy(m)
    report = Pruner(m).prune(0.7, scope="global")
    total = sum(getattr(ref, n).weight.numel() for n in LAYERS)
    assert sum(masked(m, n) for n in LAYERS) == round(0.7 * total)
    pruned = torch.cat([getattr(ref, n).weight.detach()[get_mask(getattr(m, n)) == 0] for n in LAYERS])
    kept = torch.cat([getattr(ref, n).weight.detach()[get_mask(getattr(m, n)) == 1] for n in LAYERS])
    assert pruned.abs().max() <= kept.abs().min()
    ratios = [report.after.layer(n).sparsity for n in LAYERS]
    assert max(ratios) - min(ratios) > 0.05   # one threshold, different per-layer ratios


def test_masks_persist_through_finetuning_and_foreign_optimisers():
    d = digits()
    m = trained_mlp()
    Pruner(m).prune(0.8)
    before = {n: getattr(m, n).weight.detach().clone() for n in LAYERS}
    finetune(m, d, CFG, 2, lr_scale=0.1, progress=False)
    for n in LAYERS:
        w, mask = getattr(m, n).weight.detach(), get_mask(getattr(m, n)).bool()
        assert torch.all(w[~mask] == 0)
        assert masked(m, n) == round(0.8 * w.numel())
        assert not torch.equal(w[mask], before[n][mask])   # the survivors did train
    # An optimiser that knows nothing about masks: weight decay + momentum revive pruned weights in the
    # parameter, but the forward pass still computes with the pruned weights.
    opt = torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    x = torch.as_tensor(d.x_val[:16])
    for _ in range(2):
        loss = m(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    mask = get_mask(m.fc1).clone()
    w_raw = m.fc1.weight.detach().clone()
    assert (w_raw[mask == 0] != 0).any()
    out = m(x)
    ref = x.flatten(1) @ (w_raw * mask).T
    h = torch.relu(ref)
    h = torch.relu(h @ (m.fc2.weight * get_mask(m.fc2)).T.detach())
    assert torch.allclose(out, h @ (m.fc3.weight * get_mask(m.fc3)).T.detach(), atol=1e-5)
    assert torch.all(m.fc1.weight[mask == 0] == 0)


def test_deepcopy_keeps_masks_working():
    m = trained_mlp()
    Pruner(m).prune(0.6)
    c = copy.deepcopy(m)
    with torch.no_grad():
        c.fc1.weight.fill_(1.0)
    c(torch.zeros(1, 1, 8, 8))
    assert int((c.fc1.weight == 0).sum()) == masked(m, "fc1")


def test_report_states_masked_sparsity_and_real_savings():
    m = trained_mlp()
    r = Pruner(m).prune(0.75)
    b, a = r.before, r.after
    assert b.params == a.params and b.macs == a.macs and a.bytes == 4 * a.params
    removed = sum(masked(m, n) for n in LAYERS)
    assert b.nonzero_params - a.nonzero_params == removed
    assert b.nonzero_macs - a.nonzero_macs == removed      # an MLP: one MAC per weight
    text = r.summary()
    assert "masked sparsity 0.0% → 75.0%" in text and "real savings" in text and "MACs" in text
    assert "bytes" in text and "dense storage" in text
    d = r.to_dict()
    assert d["after"]["masked_sparsity"] == pytest.approx(0.75) and d["changed"] is True
    zero = Pruner(m).prune(0.0, scope="global")
    assert not zero.changed and "changed nothing" in str(zero)


def test_accuracy_falls_with_heavy_pruning():
    d = digits()
    m = trained_mlp()
    base = evaluate(m, d.x_val, d.y_val)
    Pruner(m).prune(0.97)
    assert evaluate(m, d.x_val, d.y_val) < base - 10


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, math.inf, True, "0.5", None])
def test_ratios_outside_the_range_are_rejected(bad):
    p = Pruner(trained_mlp())
    with pytest.raises(ValueError, match=r"ratio.*\[0, 1\)|needs a ratio"):
        p.prune(bad)
    with pytest.raises(ValueError, match=r"fc2.*\[0, 1\)|ratio for fc2"):
        p.prune({"fc2": bad})


def test_unknown_layers_and_unprunable_models_are_named():
    m = trained_mlp()
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) 'fc9'.*fc1, fc2, fc3"):
        Pruner(m, layers=["fc1", "fc9"])
    with pytest.raises(ValueError, match="unknown layer.*'conv1'"):
        Pruner(m, layers=["fc1"]).prune({"conv1": 0.5})
    with pytest.raises(ValueError, match="no prunable layer"):
        Pruner(nn.Sequential(nn.ReLU(), nn.Flatten()))
    with pytest.raises(ValueError, match="unknown scope"):
        Pruner(m).prune(0.5, scope="model")
    with pytest.raises(ValueError, match="BN-scale importance ranks channels"):
        Pruner(m, FineGrained(), BNScale()).prune(0.5)
    with pytest.raises(ValueError, match="unknown granularity"):
        granularity("blocks")


def test_l1_and_l2_agree_on_single_weights():
    a, b = trained_mlp(), trained_mlp()
    Pruner(a).prune(0.6)
    Pruner(b, FineGrained(), L2()).prune(0.6)
    for n in LAYERS:
        assert torch.equal(get_mask(getattr(a, n)), get_mask(getattr(b, n)))
