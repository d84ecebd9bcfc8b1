"""BatchNorm folding on removal: a pruned channel's constant output (``relu(β)``) goes into the
consumers where that is exact, and is zeroed or kept (with the reason) where it is not."""

import pytest
import torch
from torch import nn

from sw.prune.criteria import L1
from sw.prune.granularity import Channel
from sw.prune.masks import apply_mask, get_mask
from sw.prune.pruner import Pruner
from sw.prune.removal import remove_channels
from verif.tests.prune_common import one_thread  # noqa: F401 - the fixture, by name

pytestmark = pytest.mark.usefixtures("one_thread")


def _shifted(m, seed=0):
    """Nonzero BatchNorm shifts and running statistics, so pruned channels compute relu(β) != 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.bias.uniform_(0.2, 1.0, generator=g)
                mod.running_mean.uniform_(-1, 1, generator=g)
                mod.running_var.uniform_(0.5, 2, generator=g)
    return m.eval()


def chain(pad2=0, pool=None):
    """conv1 → bn1 → relu [→ pool] → conv2 (padding ``pad2``, no bias) → bn2 → relu → flatten → fc1
    (no bias) → relu → fc2."""
    layers = [nn.Conv2d(1, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU()]
    layers += [pool] if pool is not None else []
    layers += [nn.Conv2d(6, 4, 3, padding=pad2, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()]
    side = 8 - 2 - 2 + 2 * pad2
    m = nn.Sequential(*layers, nn.Linear(4 * side * side, 5, bias=False), nn.ReLU(), nn.Linear(5, 3))
    m.input_shape = (1, 8, 8)
    return _shifted(m)


def _prune(m, ratios, **kw):
    p = Pruner(m, Channel(**kw), L1(), list(ratios))
    report = p.prune(ratios)
    return p, report


def test_nonzero_shifts_are_folded_exactly_into_conv_linear_and_batchnorm():
    m = chain()
    conv2 = "4" if len(m) == 12 else "3"
    x = torch.rand(6, 1, 8, 8)
    dense = m(x)
    p, report = _prune(m, {"0": 0.5, conv2: 0.5})
    assert report.notes == []                                # no padding on the way: every shift folds
    assert get_mask(m[1], "bias").all() and not get_mask(m[1], "weight").all()   # β kept, γ pruned
    masked = m(x)
    assert not torch.allclose(masked, dense, atol=1e-3)
    removal = p.remove()
    assert torch.allclose(m(x), masked, atol=1e-5)
    assert m[0].out_channels == 3 and m[3].in_channels == 3 and m[3].out_channels == 2
    # conv2 has no bias but only bn2 reads it: conv1's constant went into bn2's running mean; fc1 has
    # neither, so it got a bias
    assert any("4.running_mean" in n for n in removal.notes) and m[7].bias is not None
    # zeroing the shifts instead (the old behaviour) is exact too, but computes something else
    z = chain()
    _prune(z, {"0": 0.5, conv2: 0.5}, fold=False)
    assert not get_mask(z[1], "bias").all()
    zero_masked = z(x)
    remove_channels(z)
    assert torch.allclose(z(x), zero_masked, atol=1e-5) and not torch.allclose(zero_masked, masked, atol=1e-4)
    assert z[7].bias is None


def test_a_padded_consumer_gets_zeroed_shifts_and_a_linear_one_folds_position_dependent_values():
    m = chain(pad2=1, pool=nn.AvgPool2d(3, 1, padding=1))    # the pool too makes the constant uneven
    x = torch.rand(6, 1, 8, 8)
    p, report = _prune(m, {"0": 0.5, "4": 0.5})
    assert len(report.notes) == 1 and "layer 0:" in report.notes[0] and "padding (1, 1)" in report.notes[0]
    assert not get_mask(m[1], "bias").all()                  # conv1's pruned shifts zeroed: conv2 is padded
    assert get_mask(m[5], "bias").all()                      # conv2's kept: fc1 folds any value per feature
    masked = m(x)
    removal = p.remove()
    assert torch.allclose(m(x), masked, atol=1e-5)
    assert (m[0].out_channels, m[4].out_channels) == (3, 2) and not any("kept" in n for n in removal.notes)


def test_an_unfoldable_constant_keeps_its_channel_and_says_why():
    m = chain(pad2=1)
    x = torch.rand(6, 1, 8, 8)
    apply_mask(m[0], "weight", torch.tensor([1.0, 0, 1, 1, 1, 1]).reshape(6, 1, 1, 1).expand(6, 1, 3, 3))  # β stays
    apply_mask(m[1], "weight", torch.tensor([1.0, 0, 1, 1, 1, 1]))
    before = m(x)
    removal = remove_channels(m)
    assert m[0].out_channels == 6 and torch.equal(m(x), before)
    assert "0: kept 1 pruned unit(s)" in removal.notes[0] and "padding (1, 1)" in removal.notes[0]


def test_a_sigmoid_keeps_zeroed_channels_nonzero_so_they_stay():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Sigmoid(),
                      nn.Conv2d(4, 2, 3, padding=1), nn.Flatten(), nn.Linear(72, 3))
    m.input_shape = (1, 8, 8)
    _shifted(m)
    x = torch.rand(3, 1, 8, 8)
    p, _ = _prune(m, {"0": 0.5})
    masked = m(x)
    removal = p.remove()                  # sigmoid(0) = 0.5 reaches a padded conv: not removable
    assert m[0].out_channels == 4 and torch.allclose(m(x), masked, atol=1e-6)
    assert any("kept 2 pruned unit(s)" in n for n in removal.notes)
