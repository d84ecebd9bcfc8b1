"""The ResNet and MobileNet models: they train on the digits, their coupled channels are removed
exactly (the model gets smaller, its outputs do not change), and they save and load."""

import copy
from functools import cache

import pytest
import torch

from sw.models import registry
from sw.models.io import load_model, save_model
from sw.models.mobilenet import SmallMobileNet
from sw.models.resnet import SmallResNet
from sw.models.train import TrainConfig, evaluate, train
from sw.prune.criteria import L1, BNScale
from sw.prune.granularity import Channel
from sw.prune.pruner import Pruner
from verif.tests.prune_common import digits, one_thread  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("resnet", "mobilenet")


@cache
def _trained(name):
    d = digits()
    m = registry.build(name, d.input_shape, d.classes, seed=0)
    hist = train(m, d, TrainConfig(epochs=3, lr=0.2, seed=0), progress=False)
    return m, hist


def trained(name):
    return copy.deepcopy(_trained(name)[0])


def test_shapes_configs_and_bad_input():
    for name, cls in (("resnet", SmallResNet), ("mobilenet", SmallMobileNet)):
        big, small = registry.build(name, (1, 28, 28), 10), registry.build(name, (1, 8, 8), 10)
        assert big(torch.zeros(2, 1, 28, 28)).shape == small(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
        assert type(registry.from_config(cls.__name__, big.config)) is cls
    r = SmallResNet()
    assert r.layers[0][0].downsample is None and r.layers[1][0].downsample[0].kernel_size == (1, 1)
    assert SmallMobileNet().block2.dw.groups == 16
    with pytest.raises(ValueError, match="one width and block count"):
        SmallResNet(widths=(8, 16), blocks=(1,))
    with pytest.raises(ValueError, match="must be >= 1"):
        SmallMobileNet(blocks=((0, 1),))


@pytest.mark.parametrize("name", NAMES)
def test_trains_on_the_digits(name):
    m, hist = _trained(name)
    d = digits()
    assert hist[-1]["loss"] < hist[0]["loss"] and evaluate(m, d.x_test, d.y_test) > 80


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("criterion", [L1(), BNScale()], ids=["l1", "bn"])
def test_removal_is_exact_smaller_and_survives_save_and_load(name, criterion, tmp_path):
    m = trained(name)
    x = torch.as_tensor(digits().x_test[:32])
    p = Pruner(m, Channel(), criterion)
    p.prune(0.5, scope="global")
    masked = m(x)
    removal = p.remove()
    assert torch.allclose(m(x), masked, atol=1e-5)
    assert removal.after.params < 0.7 * removal.before.params and removal.after.macs < removal.before.macs
    assert not any("kept" in n for n in removal.notes)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            assert mod.weight.shape == (mod.out_channels, mod.in_channels // mod.groups, *mod.kernel_size)
    if name == "mobilenet":
        assert m.block2.dw.groups == m.block2.dw.out_channels == m.block1.pw.out_channels < 16
    else:
        stream = m.conv1.out_channels
        assert m.layers[0][0].conv2.out_channels == m.layers[1][0].conv1.in_channels == stream < 16
        assert m.layers[1][0].downsample[0].out_channels == m.layers[1][0].conv2.out_channels == m.fc.in_features
    back, meta = load_model(save_model(m, tmp_path / "m.safetensors"))
    assert meta["architecture"]["class"] == type(m).__name__
    back.eval()
    assert torch.equal(back(x), m(x))
