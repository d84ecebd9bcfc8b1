"""N:M granularity: validation, and masks that follow sw.pack.sparse24.mask_nm along the input axis."""

import numpy as np
import pytest
import torch
from torch import nn

from sw.pack.sparse24 import mask_nm
from sw.prune.granularity import NM, granularity
from sw.prune.masks import get_mask
from sw.prune.pruner import Pruner
from verif.tests.prune_common import trained_mlp


def test_m_must_divide_the_input_dimension():
    m = nn.Sequential(nn.Linear(10, 4, bias=False))
    with pytest.raises(ValueError,
                       match=r"2:4 pruning of layer 0: its input dimension \(10\) is not a multiple of m=4"):
        Pruner(m, NM(2, 4), example_input=torch.zeros(1, 10))
    conv = nn.Sequential(nn.Conv2d(6, 4, 3))
    with pytest.raises(ValueError, match=r"input dimension \(6\)"):
        Pruner(conv, NM(2, 4), example_input=torch.zeros(1, 6, 5, 5))


def test_bad_n_and_m():
    for n, m in ((3, 2), (0, 4), ("2", 4), (2, 4.0)):
        with pytest.raises(ValueError, match="N:M"):
            NM(n, m)
    assert isinstance(granularity("2:4"), NM) and granularity("1:8").m == 8


def test_nm_takes_no_ratio():
    with pytest.raises(ValueError, match="fixed pattern; it takes no ratio"):
        Pruner(trained_mlp(), NM(2, 4)).prune(0.5)


def test_2_4_on_linear_layers():
    m = trained_mlp((64, 32))
    w0 = {n: getattr(m, n).weight.detach().clone() for n in ("fc1", "fc2", "fc3")}
    report = Pruner(m, NM(2, 4), layers=["fc1", "fc2"]).prune()
    assert report.after.layer("fc1").sparsity == 0.5 and report.after.layer("fc2").sparsity == 0.5
    for n in ("fc1", "fc2"):
        w = getattr(m, n).weight.detach()
        groups = w.reshape(w.shape[0], -1, 4)
        assert torch.all((groups != 0).sum(-1) == 2)
        g0 = w0[n].reshape(groups.shape).abs()
        kept = groups != 0
        assert torch.all(g0.masked_fill(~kept, torch.inf).amin(-1) >= g0.masked_fill(kept, -1).amax(-1))
    assert get_mask(m.fc3) is None


def test_conv_groups_run_along_input_channels():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(8, 3, 3, bias=False))
    w0 = m[0].weight.detach().clone()
    Pruner(m, NM(2, 4), example_input=torch.zeros(1, 8, 5, 5)).prune()
    w = m[0].weight.detach()
    # (out, in, kh, kw): every 4 consecutive input channels at one (out, kh, kw) keep exactly 2.
    per_group = (w != 0).reshape(3, 2, 4, 3, 3).sum(2)
    assert torch.all(per_group == 2)
    expect = mask_nm(w0.permute(0, 2, 3, 1).abs().numpy(), 2, 4)
    assert np.array_equal((w != 0).permute(0, 2, 3, 1).numpy(), expect)


def test_nm_on_top_of_a_fine_mask_never_revives():
    m = trained_mlp((64, 32))
    Pruner(m).prune(0.7)
    before = get_mask(m.fc1).clone()
    Pruner(m, NM(2, 4)).prune()
    after = get_mask(m.fc1)
    assert torch.all(after <= before)
    assert torch.all((m.fc1.weight.reshape(64, -1, 4) != 0).sum(-1) <= 2)
