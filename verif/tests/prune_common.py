"""Shared, per-process cached fixtures for the pruning tests: small models trained on the 8×8 digits.

Everything trains on scikit-learn's bundled digits with a few epochs and fixed seeds, and nothing
is written outside pytest's temporary directories.
"""

import copy
from functools import cache

import pytest
import torch

from sw.models import data as datasets
from sw.models.cnn import SmallCNN
from sw.models.mlp import MLP
from sw.models.train import TrainConfig, train

CFG = TrainConfig(epochs=6, lr=0.1, weight_decay=1e-4, seed=0)


@pytest.fixture
def one_thread():
    """One torch thread: these models are tiny, and on a busy machine a second intra-op thread
    makes each small convolution wait (~100 ms) for a core. Import it and name it in ``usefixtures``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def digits():
    return datasets.load_digits()


@cache
def _trained_mlp(hidden):
    d = digits()
    torch.manual_seed(0)
    m = MLP(d.input_shape, hidden, d.classes)
    train(m, d, CFG, progress=False)
    return m


def trained_mlp(hidden=(64, 32)):
    """A bias-free MLP trained 6 epochs on digits (a fresh copy per call)."""
    return copy.deepcopy(_trained_mlp(tuple(hidden)))


@cache
def _trained_cnn():
    d = digits()
    torch.manual_seed(0)
    m = SmallCNN(d.input_shape, channels=(8, 16), kernel_size=3, padding=1, fc=(32, 24), classes=d.classes)
    train(m, d, TrainConfig(epochs=3, lr=0.05, seed=0), progress=False)
    return m


def trained_cnn():
    """A small BatchNorm CNN (8, 16 channels) trained 3 epochs on digits (a fresh copy per call)."""
    return copy.deepcopy(_trained_cnn())


@cache
def _trained_resnet():
    from sw.models.resnet import SmallResNet

    d = digits()
    torch.manual_seed(0)
    m = SmallResNet(d.input_shape, widths=(8, 16), blocks=(2, 1), classes=d.classes)
    train(m, d, TrainConfig(epochs=3, lr=0.05, seed=0), progress=False)
    return m


def trained_resnet():
    """A small ResNet (two 8-channel blocks sharing one residual stream, one 16-channel block)
    trained 3 epochs on digits (a fresh copy per call)."""
    return copy.deepcopy(_trained_resnet())
