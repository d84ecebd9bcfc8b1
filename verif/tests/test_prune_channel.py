"""Channel/filter pruning: dependent layers shrink consistently and removal is exact."""

import copy

import pytest
import torch
from torch import nn

from sw.models.train import finetune
from sw.prune.criteria import L1, L2, BNScale
from sw.prune.granularity import Channel
from sw.prune.graph import channel_groups
from sw.prune.masks import get_mask
from sw.prune.pruner import Pruner
from sw.prune.removal import remove_channels
from sw.prune.report import model_stats
from verif.tests.prune_common import CFG, digits, trained_cnn, trained_mlp


def outputs(m, x):
    m.eval()
    with torch.no_grad():
        return m(x)


def test_dependency_groups_of_the_cnn():
    g = channel_groups(trained_cnn())
    assert [f.name for f in g["conv1"].followers] == ["bn1"]
    assert [(c.name, c.index.tolist()) for c in g["conv1"].consumers] == [("conv2", list(range(8)))]
    (fc1,) = g["conv2"].consumers                                          # 2x2 positions per channel
    assert fc1.name == "fc1" and torch.equal(fc1.index, torch.arange(16).repeat_interleave(4))
    assert [(c.name, c.index.tolist()) for c in g["fc1"].consumers] == [("fc2", list(range(32)))]
    assert g["fc3"].blocked == "its output is the model output"


@pytest.mark.parametrize("criterion", [L1(), L2(), BNScale()])
def test_removal_shrinks_dependents_and_changes_no_output(criterion):
    d = digits()
    m = trained_cnn()
    x = torch.as_tensor(d.x_test[:64])
    dense_out = outputs(m, x)
    layers = ["conv1", "conv2"] if isinstance(criterion, BNScale) else None
    p = Pruner(m, Channel(), criterion, layers)
    report = p.prune(0.5)
    assert report.after.params == report.before.params      # masked, not yet removed
    masked_out = outputs(m, x)
    assert not torch.allclose(masked_out, dense_out, atol=1e-3)
    removal = p.remove()
    assert torch.allclose(outputs(m, x), masked_out, atol=1e-5)
    assert m.conv1.out_channels == m.conv1.weight.shape[0] == 4
    assert m.bn1.num_features == m.bn1.weight.shape[0] == m.bn1.running_mean.shape[0] == 4
    assert m.conv2.in_channels == m.conv2.weight.shape[1] == 4
    assert m.conv2.out_channels == m.bn2.num_features == 8
    assert m.fc1.in_features == m.fc1.weight.shape[1] == 8 * 4
    if layers is None:
        assert m.fc1.out_features == 16 and m.fc2.in_features == 16 and m.fc2.out_features == 12
        assert m.fc3.in_features == 12 and m.fc3.out_features == 10
    assert removal.changed and removal.after.params < removal.before.params
    assert removal.after.macs < removal.before.macs and removal.after.bytes == 4 * removal.after.params


def test_l1_removes_the_smallest_filters_and_consumer_columns_follow():
    m = trained_cnn()
    ref = copy.deepcopy(m)
    norms = ref.conv2.weight.detach().abs().flatten(1).sum(1)
    Pruner(m, Channel(), L1(), ["conv2"]).prune(0.25)
    remove_channels(m)
    keep = torch.sort(torch.argsort(norms, descending=True)[:12]).values
    assert torch.equal(m.conv2.weight, ref.conv2.weight[keep])
    assert torch.equal(m.bn2.weight, ref.bn2.weight[keep])
    cols = (keep[:, None] * 4 + torch.arange(4)).flatten()
    assert torch.equal(m.fc1.weight, ref.fc1.weight[:, cols])


def test_bn_scale_ranks_by_gamma():
    m = trained_cnn()
    with torch.no_grad():
        m.bn1.weight.copy_(torch.tensor([0.5, -0.01, 0.3, 0.02, -0.9, 0.4, 0.001, 0.7]))
    Pruner(m, Channel(), BNScale(), ["conv1"]).prune(0.375)
    remove_channels(m)
    assert m.bn1.weight.detach().tolist() == pytest.approx([0.5, 0.3, -0.9, 0.4, 0.7])


def test_l2_and_l1_can_disagree_on_channels():
    m = nn.Sequential(nn.Linear(4, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.5, 0.0, 0.0,
                                                               0.0]]))   # L1 4 vs 2.5; L2 2 vs 2.5
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    ex = torch.zeros(1, 4)
    Pruner(a, Channel(), L1(), ["0"], example_input=ex).prune(0.5)
    Pruner(b, Channel(), L2(), ["0"], example_input=ex).prune(0.5)
    assert get_mask(a[0]).sum(1).tolist() == [4, 0]
    assert get_mask(b[0]).sum(1).tolist() == [0, 4]


def test_mlp_neurons_and_macs_after_removal():
    m = trained_mlp((64, 32))
    Pruner(m, Channel(), L1()).prune({"fc1": 0.5, "fc2": 0.25})
    remove_channels(m)
    assert tuple(m.fc1.weight.shape) == (32, 64) and tuple(m.fc2.weight.shape) == (24, 32)
    assert tuple(m.fc3.weight.shape) == (10, 24)
    assert model_stats(m).macs == 32 * 64 + 24 * 32 + 10 * 24


def test_cnn_macs_count_spatial_positions():
    m = trained_cnn()
    s = model_stats(m)
    expect = 8 * 1 * 9 * 64 + 16 * 8 * 9 * 16 + 64 * 32 + 32 * 24 + 24 * 10
    assert s.macs == expect
    Pruner(m, Channel(), L1(), ["conv1", "conv2"]).prune(0.5)
    remove_channels(m)
    assert model_stats(m).macs == 4 * 1 * 9 * 64 + 8 * 4 * 9 * 16 + 32 * 32 + 32 * 24 + 24 * 10


def test_fine_masks_survive_removal_and_finetuning():
    d = digits()
    m = trained_cnn()
    Pruner(m).prune(0.5)                                   # fine-grained masks everywhere
    fine_fc2 = get_mask(m.fc2).clone()
    p = Pruner(m, Channel(), L1(), ["conv2", "fc1"])
    p.prune(0.5)
    p.remove()
    assert get_mask(m.fc2).shape == m.fc2.weight.shape == (24, 16)
    finetune(m, d, CFG, 1, progress=False)
    assert torch.all(m.fc2.weight[get_mask(m.fc2) == 0] == 0)
    assert int((get_mask(m.fc2) == 0).sum()) <= int((fine_fc2 == 0).sum())


def test_global_channel_pruning_keeps_one_channel_per_layer():
    m = trained_cnn()
    with torch.no_grad():
        m.bn1.weight.mul_(1e-3)                      # conv1 channels all rank lowest
    r = Pruner(m, Channel(), BNScale(), ["conv1", "conv2"]).prune(0.4, scope="global")
    assert any("kept the best 1" in n for n in r.notes)
    remove_channels(m)
    assert m.conv1.out_channels == 1
    assert m.conv1.out_channels + m.conv2.out_channels == 24 - round(0.4 * 24) + 1


def test_channel_bad_input():
    m = trained_cnn()
    with pytest.raises(ValueError,
                       match="cannot prune channels of layer fc3: its output is the model output"):
        Pruner(m, Channel(), layers=["fc3"])
    with pytest.raises(ValueError, match="would prune 8 of the 8 units of layer conv1"):
        Pruner(m, Channel(), layers=["conv1"]).prune(0.95)
    with pytest.raises(ValueError, match="has no BatchNorm after it"):
        Pruner(m, Channel(), BNScale(), ["fc1"]).prune(0.5)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.input_shape = (4,)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


def test_channels_coupled_to_the_model_input_are_refused_with_the_reason():
    m = Residual()
    assert channel_groups(m)["a"].blocked == "its channels are tied to the model input x"
    with pytest.raises(ValueError, match="cannot prune channels of layer a: its channels are tied to the model "
                                         "input x"):
        Pruner(m, Channel(), layers=["a"])
    with pytest.raises(ValueError, match="no layer whose channels can be removed"):
        Pruner(m, Channel())


def test_non_affine_batchnorm_blocks_channel_removal():
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6, affine=False), nn.ReLU(), nn.Linear(6, 2))
    g = channel_groups(m, torch.zeros(2, 4))
    assert "no affine scale" in g["0"].blocked
