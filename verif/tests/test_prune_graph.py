"""The channel dependency graph: coupled groups (add, cat, depthwise and grouped convolutions),
importance per coupled unit, refusal of what it does not understand, and exact removal on random
architectures mixing all of it."""

import random

import pytest
import torch
from torch import nn

from sw.prune.criteria import L1, BNScale
from sw.prune.granularity import Channel, dead_units
from sw.prune.graph import channel_groups, unique_groups
from sw.prune.masks import apply_mask
from sw.prune.pruner import Pruner
from sw.prune.removal import remove_channels
from verif.tests.prune_common import one_thread  # noqa: F401 - the fixture, by name

pytestmark = pytest.mark.usefixtures("one_thread")


class Coupled(nn.Module):
    """``a`` and ``b`` added (one group), a cat of ``c`` with the sum, a depthwise and a grouped conv."""

    def __init__(self):
        super().__init__()
        self.input_shape = (1, 6, 6)
        self.a, self.b = nn.Conv2d(1, 4, 1), nn.Conv2d(1, 4, 1)
        self.c = nn.Conv2d(1, 2, 1)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.grouped = nn.Conv2d(6, 6, 1, groups=3)
        self.head = nn.Conv2d(6, 3, 1)

    def forward(self, x):
        y = torch.cat([torch.relu(self.a(x) + self.b(x)), self.c(x)], 1)
        return self.head(torch.relu(self.grouped(torch.relu(self.dw(y)))))


def test_add_couples_cat_slices_and_grouped_convolutions_keep_groups_whole():
    g = channel_groups(Coupled())
    assert g["a"] is g["b"] and g["a"].layer == "a" and [p.name for p in g["a"].producers] == ["a", "b"]
    # the grouped conv (3 groups of 2 inputs, 2 outputs) ties a+b's channels in pairs: 2 units
    assert g["a"].units == 2 and g["c"].units == 1 and g["grouped"] is g["a"]
    assert {f.name: f.index.tolist() for f in g["a"].followers} == {"dw": [0, 0, 1, 1, -1, -1],
                                                                    "grouped": [0, 0, 1, 1, -1, -1]}
    assert {f.name: f.index.tolist() for f in g["c"].followers} == {"dw": [-1, -1, -1, -1, 0, 0],
                                                                    "grouped": [-1, -1, -1, -1, 0, 0]}
    assert [(c.name, c.index.tolist()) for c in g["a"].consumers] == [("head", [0, 0, 1, 1, -1, -1])]
    assert g["head"].blocked == "its output is the model output"
    m = Coupled()
    x = torch.rand(2, 1, 6, 6)
    p = Pruner(m, Channel(), L1(), ["a"])
    p.prune(0.5)
    before = m(x)
    p.remove()
    assert torch.allclose(m(x), before, atol=1e-6)
    assert (m.a.out_channels, m.b.out_channels, m.dw.groups, m.grouped.groups, m.head.in_channels) == (2, 2, 4, 2, 4)


def test_residual_and_depthwise_models_couple_as_expected():
    from sw.models.mobilenet import SmallMobileNet
    from sw.models.resnet import SmallResNet

    g = channel_groups(SmallResNet((1, 8, 8), (4, 8), (2, 1)))
    stream = g["conv1"]
    assert [p.name for p in stream.producers] == ["conv1", "layers.0.0.conv2", "layers.0.1.conv2"]
    assert {c.name for c in stream.consumers} == {"layers.0.0.conv1", "layers.0.1.conv1", "layers.1.0.conv1",
                                                  "layers.1.0.downsample.0"}
    assert g["layers.1.0.downsample.0"] is g["layers.1.0.conv2"]          # the 1x1 shortcut joins the add
    assert len(unique_groups(g)) == 6 and g["fc"].blocked
    g = channel_groups(SmallMobileNet((1, 8, 8), 4, ((8, 1), (8, 2))))
    assert g["block1.dw"] is g["stem"] and g["block2.dw"] is g["block1.pw"]   # depthwise follows its producer
    assert [f.name for f in g["stem"].followers] == ["stem_bn", "block1.dw", "block1.dw_bn"]


def test_coupled_units_are_scored_by_mean_or_sum_over_their_channels():
    m = Coupled()
    with torch.no_grad():
        m.a.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1))
        m.b.weight.copy_(torch.tensor([3.0, 0.0, 1.0, 0.0]).reshape(4, 1, 1, 1))
    for reduce, expect in (("mean", [1.5, 2.0]), ("sum", [6.0, 8.0])):     # a unit: 2 channels of a and b
        p = Pruner(m, Channel(reduce=reduce), L1(), ["a"])
        assert Channel(reduce=reduce).scores(p, "a", L1()).tolist() == expect
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        Channel(reduce="max")
    with pytest.raises(ValueError, match="layers a and b are coupled into one channel group"):
        Pruner(m, Channel(), L1(), ["a", "b"])
    with pytest.raises(ValueError, match="layer a has no BatchNorm after it"):
        Pruner(m, Channel(), BNScale(), ["a"]).prune(0.5)


class Rolled(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_shape = (1, 6, 6)
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.conv3(torch.relu(self.conv2(torch.roll(torch.relu(self.conv1(x)), 1, 1))))


def test_an_op_the_graph_does_not_understand_blocks_its_channels_by_name():
    m = Rolled()
    why = channel_groups(m)["conv1"].blocked
    assert why.startswith("its channels reach roll (call_function ") and "roll)" in why
    assert "does not understand" in why
    with pytest.raises(ValueError, match=r"cannot prune channels of layer conv1: its channels reach roll"):
        Pruner(m, Channel(), layers=["conv1"])
    assert list(Pruner(m, Channel()).layers) == ["conv2"]      # the rest still prunes
    apply_mask(m.conv1, "weight", torch.tensor([1.0, 0, 1, 1]).reshape(4, 1, 1, 1))  # masked by hand
    x = torch.rand(3, 1, 6, 6)
    before = m(x)
    remove_channels(m)
    assert m.conv1.out_channels == 4 and torch.equal(m(x), before)   # never removed


def _randomise(m, rng):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1, generator=rng)
                mod.running_var.uniform_(0.5, 2, generator=rng)
                mod.weight.uniform_(0.5, 1.5, generator=rng)
                mod.bias.uniform_(-1, 1, generator=rng)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.uniform_(-1, 1, generator=rng)


class RandomNet(nn.Module):
    """A seeded random stack of conv/BN/ReLU, residual blocks (identity and 1x1-conv shortcuts),
    two-branch cats, depthwise and grouped convolutions, then flatten + linear or pooling + linear."""

    def __init__(self, seed: int):
        super().__init__()
        rng = random.Random(seed)
        self.input_shape = (1, 8, 8)
        self.mods, self.plan = nn.ModuleDict(), []
        c, side = 4, 8
        self.plan.append(("unit", self._unit("stem", 1, c, 3, 1, rng)))
        for i in range(rng.randint(3, 6)):
            kind = rng.choice(["unit", "res", "res_proj", "cat", "dw", "grouped"])
            name = f"s{i}"
            if kind == "unit":
                k = rng.choice([1, 3])
                pad = rng.choice([0, k // 2]) if side > 4 else k // 2
                c2 = rng.randint(2, 6)
                self.plan.append(("unit", self._unit(name, c, c2, k, pad, rng)))
                c, side = c2, side - k + 1 + 2 * pad
            elif kind in ("res", "res_proj"):
                c2 = c if kind == "res" else rng.randint(2, 6)
                k = rng.choice([1, 3])
                first = self._unit(name + "a", c, c2, k, k // 2, rng)
                self.mods[name + "b"] = nn.Conv2d(c2, c2, k, padding=k // 2, bias=False)
                self.mods[name + "bn"] = nn.BatchNorm2d(c2)
                if kind == "res_proj":
                    self.mods[name + "p"] = nn.Conv2d(c, c2, 1, bias=False)
                    self.mods[name + "pbn"] = nn.BatchNorm2d(c2)
                self.plan.append((kind, name, first))
                c = c2
            elif kind == "cat":
                ca = rng.randint(1, 4)
                a = self._unit(name + "a", c, ca, 1, 0, rng)
                identity = rng.random() < 0.5
                b = None if identity else self._unit(name + "b", c, rng.randint(1, 4), 3, 1, rng)
                self.plan.append(("cat", a, b))
                c = ca + (c if identity else self.mods[b[0]].out_channels)
            elif kind == "dw":
                pad = rng.choice([0, 1]) if side > 4 else 1
                self.plan.append(("unit", self._unit(name, c, c, 3, pad, rng, groups=c)))
                side = side - 2 + 2 * pad
            else:
                if c % 2:
                    self.plan.append(("unit", self._unit(name + "e", c, c + 1, 1, 0, rng)))
                    c += 1
                c2 = 2 * rng.randint(1, 3)
                self.plan.append(("unit", self._unit(name, c, c2, 1, 0, rng, groups=2)))
                c = c2
        self.flat = rng.random() < 0.5
        self.mods["fc1"] = nn.Linear(c * side * side if self.flat else c, 5)
        self.mods["fc2"] = nn.Linear(5, 3)

    def _unit(self, name, c_in, c_out, k, pad, rng, groups=1):
        """conv (→ BN, or a bias) → ReLU; returns the names."""
        bn = rng.random() < 0.7
        self.mods[name] = nn.Conv2d(c_in, c_out, k, padding=pad, groups=groups, bias=not bn)
        if bn:
            self.mods[name + "_bn"] = nn.BatchNorm2d(c_out)
        return name, name + "_bn" if bn else None

    def _run(self, unit, x):
        conv, bn = unit
        x = self.mods[conv](x)
        return torch.relu(self.mods[bn](x) if bn else x)

    def forward(self, x):
        for step in self.plan:
            if step[0] == "unit":
                x = self._run(step[1], x)
            elif step[0] in ("res", "res_proj"):
                name = step[1]
                y = self.mods[name + "bn"](self.mods[name + "b"](self._run(step[2], x)))
                short = x if step[0] == "res" else self.mods[name + "pbn"](self.mods[name + "p"](x))
                x = torch.relu(y + short)
            else:
                x = torch.cat([self._run(step[1], x), x if step[2] is None else self._run(step[2], x)], 1)
        x = torch.flatten(x, 1) if self.flat else x.mean((2, 3))
        return self.mods["fc2"](torch.relu(self.mods["fc1"](x)))


@pytest.mark.parametrize("seed", range(10))
def test_removing_random_coupled_groups_of_random_architectures_is_exact(seed):
    torch.manual_seed(seed)
    m = RandomNet(seed)
    _randomise(m, torch.Generator().manual_seed(seed))
    rng = random.Random(seed)
    granularity = Channel(reduce=rng.choice(["mean", "sum"]), fold=rng.random() < 0.8)
    p = Pruner(m, granularity, L1())
    units = {n: p.groups[n].units for n in p.layers}
    ratios = {n: rng.randint(0, u - 1) / u for n, u in units.items()}
    p.prune(ratios)
    m.eval()
    x = torch.rand(5, 1, 8, 8)
    masked = m(x)
    report = p.remove()
    assert torch.allclose(m(x), masked, atol=1e-5, rtol=1e-4), report.notes
    pruned = sum(round(r * units[n]) for n, r in ratios.items())
    assert (report.after.params < report.before.params) == (pruned > 0)
    assert not any(n.startswith("kept") or " kept " in n for n in report.notes)
    groups = unique_groups(channel_groups(m))
    assert not any(dead_units(g).any() for g in groups if not g.blocked)   # every pruned unit went
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):                       # groups stayed whole and consistent
            assert mod.weight.shape == (mod.out_channels, mod.in_channels // mod.groups, *mod.kernel_size)


class Viewed(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_shape = (2, 6, 6)
        self.conv, self.bn, self.fc, self.out = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(64, 5), nn.Linear(5, 2)

    def forward(self, x):
        a, _ = torch.split(x, 1, 1)
        x = torch.relu(self.bn(self.conv(a)))
        return self.out(torch.relu(self.fc(x.view(x.size(0), -1))))


def test_a_view_sized_by_the_batch_flattens_and_a_split_input_only_blocks_what_it_reaches():
    g = channel_groups(Viewed())
    assert g["conv"].blocked is None and [f.name for f in g["conv"].followers] == ["bn"]
    assert torch.equal(g["conv"].consumers[0].index, torch.arange(4).repeat_interleave(16))
