"""k-means weight sharing and centroid fine-tuning."""

import numpy as np
import pytest
import torch
from torch import nn

from sw.models.train import evaluate, finetune
from sw.prune.masks import get_mask
from sw.prune.pruner import Pruner
from sw.prune.share import kmeans_1d, share_weights, shared_size, shared_weight
from verif.tests.prune_common import CFG, digits, trained_mlp


def test_kmeans_linear_init_and_exact_on_few_values():
    v = np.array([0.1, 0.1, 0.5, 0.9, 0.9, 0.9])
    c, labels = kmeans_1d(v, 3)
    assert np.allclose(c, [0.1, 0.5, 0.9]) and np.allclose(c[labels], v)
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(-0.3, 0.05, 500), rng.normal(0.3, 0.05, 500)])   # two lobes, none near 0
    c, labels = kmeans_1d(v, 15)
    assert np.all(np.diff(c) > 0) and np.bincount(labels, minlength=15).min() > 0    # no code wasted
    assert np.array_equal(labels, np.abs(v[:, None] - c[None, :]).argmin(1))         # nearest centroid
    c2, _ = kmeans_1d(v, 15)
    assert np.array_equal(c, c2)
    # Each centroid is the mean of its cluster (a Lloyd fixed point).
    for k in range(15):
        assert c[k] == pytest.approx(v[labels == k].mean())
    with pytest.raises(ValueError):
        kmeans_1d(np.array([]), 3)
    with pytest.raises(ValueError):
        kmeans_1d(v, 0)


def test_sharing_keeps_pruned_zeros_and_uses_at_most_15_values():
    m = trained_mlp((64, 32))
    Pruner(m).prune(0.8)
    masks = {n: get_mask(getattr(m, n)).clone() for n in ("fc1", "fc2", "fc3")}
    books = share_weights(m, bits=4)
    for n, book in books.items():
        layer = getattr(m, n)
        w = layer.weight.detach()
        assert shared_size(layer) == 15 and layer.codebook.shape == (15,)
        assert torch.all(w[masks[n] == 0] == 0) and torch.all(w[masks[n] == 1] != 0)
        assert torch.equal(layer.weight_index == 0, masks[n] == 0)
        assert torch.unique(w[w != 0]).numel() <= 15
        assert torch.equal(w, shared_weight(layer))
        assert book.used == 15
        assert "weight" not in dict(layer.named_parameters(recurse=False))


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    m = trained_mlp((64, 32))
    Pruner(m).prune(0.5)
    share_weights(m, bits=3)
    x = torch.as_tensor(digits().x_val[:32])
    loss = m(x).logsumexp(1).mean()
    loss.backward()
    layer = m.fc2
    dense = nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        dense.weight.copy_(layer.weight)
    h = torch.relu(x.flatten(1) @ m.fc1.weight.detach().T)
    out = torch.relu(dense(h)) @ m.fc3.weight.detach().T
    out.logsumexp(1).mean().backward()
    idx = layer.weight_index
    expect = torch.stack([dense.weight.grad[idx == k + 1].sum() for k in range(7)])
    assert torch.allclose(layer.codebook.grad, expect, atol=1e-6)


def test_centroid_finetuning_moves_centroids_not_indices():
    d = digits()
    m = trained_mlp((64, 32))
    Pruner(m).prune(0.85)
    finetune(m, d, CFG, 2, progress=False)
    share_weights(m, bits=2)                     # 3 values: a visible accuracy cost to recover
    idx = m.fc1.weight_index.clone()
    cb = m.fc1.codebook.detach().clone()
    shared = evaluate(m, d.x_val, d.y_val)
    finetune(m, d, CFG, 3, lr_scale=0.1, progress=False)
    assert torch.equal(m.fc1.weight_index, idx) and not torch.equal(m.fc1.codebook.detach(), cb)
    assert torch.all(m.fc1.weight[idx == 0] == 0)
    assert torch.unique(m.fc1.weight[idx != 0]).numel() <= 3
    assert evaluate(m, d.x_val, d.y_val) >= shared


def test_sharing_bad_input():
    m = trained_mlp()
    with pytest.raises(ValueError, match="bits"):
        share_weights(m, bits=0)
    with pytest.raises(ValueError, match="unknown layer.*'fc5'"):
        share_weights(m, layers=["fc5"])
    share_weights(m, layers=["fc3"])
    with pytest.raises(ValueError, match="already weight-shared"):
        share_weights(m, layers=["fc3"])


def test_shared_layers_report_their_sparsity_and_refuse_more_pruning():
    from sw.prune.report import model_stats

    m = trained_mlp((64, 32))
    Pruner(m).prune(0.75)
    share_weights(m)
    assert model_stats(m).masked_sparsity == pytest.approx(0.75)
    with pytest.raises(ValueError, match="fc1 is weight-shared; prune before sharing"):
        Pruner(m)
