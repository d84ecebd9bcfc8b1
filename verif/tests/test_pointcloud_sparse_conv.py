"""Sparse convolution (gather → matmul → scatter-add) against dense ``conv3d``, its determinism,
and the TorchSparse++-style implicit GEMM grouping (exact results, padded-MAC accounting)."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from sw.pointcloud import kernel_map, native, scenes
from sw.pointcloud.implicit_gemm import implicit_gemm_conv, mac_counts, neighbor_table, plan
from sw.pointcloud.sparse_conv import conv3d_dense_at, sparse_conv3d


def int_valued(rng, shape):
    """Small integers in float64: every sum is exact, so sparse and dense must agree bit for bit."""
    return torch.as_tensor(rng.integers(-8, 9, shape).astype(np.float64))


def small_scene(seed=0):
    c = scenes.scene("room", 0.25, seed=seed, n_points=20_000)
    return c - c.min(0) - 7                          # negative coordinates too


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in,c_out", [(1, 1), (3, 8), (16, 5)])
def test_sparse_equals_dense_conv3d(stride, c_in, c_out):
    rng = np.random.default_rng(c_in * 10 + stride)
    c = small_scene(stride)
    out, maps = kernel_map(c, 3, stride)
    x, w = int_valued(rng, (len(c), c_in)), int_valued(rng, (27, c_in, c_out))
    y = sparse_conv3d(x, maps, w, len(out))
    ref = conv3d_dense_at(c, x, w, stride, out)
    assert y.shape == (len(out), c_out)
    assert torch.equal(y, ref)
    assert y.abs().sum() > 0


@pytest.mark.parametrize("stride", [1, 2])
def test_sparse_equals_dense_batched_kernel5_and_tensor_stride(stride):
    rng = np.random.default_rng(7 + stride)
    b = scenes.batch(small_scene(1)[:400], small_scene(2)[:300])
    out, maps = kernel_map(b, 5, stride)
    x, w = int_valued(rng, (len(b), 4)), int_valued(rng, (125, 4, 3))
    assert torch.equal(sparse_conv3d(x, maps, w, len(out)), conv3d_dense_at(b, x, w, stride, out))
    # The second level of a network: inputs at tensor stride 2.
    c2 = np.unique(np.floor_divide(small_scene(3), 2) * 2, axis=0)
    out, maps = kernel_map(c2, 3, stride, tensor_stride=2)
    x, w = int_valued(rng, (len(c2), 2)), int_valued(rng, (27, 2, 6))
    ref = conv3d_dense_at(c2, x, w, stride, out, tensor_stride=2)
    assert torch.equal(sparse_conv3d(x, maps, w, len(out)), ref)


def test_float_against_dense():
    rng = np.random.default_rng(3)
    c = small_scene(4)
    out, maps = kernel_map(c, 3, 2)
    x = torch.as_tensor(rng.normal(size=(len(c), 6)), dtype=torch.float32)
    w = torch.as_tensor(rng.normal(size=(27, 6, 7)), dtype=torch.float32)
    torch.testing.assert_close(sparse_conv3d(x, maps, w, len(out)), conv3d_dense_at(c, x, w, 2, out),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(native._compiler() is None, reason="no C compiler")
def test_native_kernel_builds_and_is_used(monkeypatch):
    lib = native.library()
    assert lib is not None
    calls = []
    original = lib.accumulate_f32
    monkeypatch.setattr(lib, "accumulate_f32", lambda *a: calls.append(a[3]) or original(*a))
    c = small_scene(5)
    out, maps = kernel_map(c)
    sparse_conv3d(torch.ones(len(c), 4), maps, torch.ones(27, 4, 4), len(out))
    assert sorted(calls) == sorted(len(m) for m in maps if len(m))


@pytest.mark.skipif(native._compiler() is None, reason="no C compiler")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c_in,c_out", [(1, 1), (3, 5), (16, 16), (7, 19), (16, 40)])
def test_native_equals_torch_path(dtype, c_in, c_out):
    """The C kernel (blocks of 2 vectors of outputs, then a scalar remainder) against the torch path
    on random floats: equal to rounding (bit-equal where torch's GEMM sums in the same order)."""
    g = torch.Generator().manual_seed(c_in * 100 + c_out)
    c = small_scene(6)
    out, maps = kernel_map(c, 3, 2)
    x = torch.randn(len(c), c_in, generator=g, dtype=dtype)
    w = torch.randn(27, c_in, c_out, generator=g, dtype=dtype)
    fast = sparse_conv3d(x, maps, w, len(out))
    ref = sparse_conv3d(x, maps, w, len(out), native=False)
    assert fast.dtype == dtype and fast.shape == (len(out), c_out)
    torch.testing.assert_close(fast, ref, rtol=1e-6 if dtype == torch.float32 else 1e-13, atol=1e-5)
    assert fast.abs().sum() > 0


def test_unwritable_cache_falls_back_to_the_torch_path(monkeypatch, tmp_path):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    monkeypatch.setenv("SPARSEHW_CACHE", str(blocker))      # the build cannot create its directory
    native.library.cache_clear()
    try:
        assert native.library() is None
        c = small_scene(8)[:400]
        out, maps = kernel_map(c)
        x, w = torch.randn(len(c), 3), torch.randn(27, 3, 2)
        torch.testing.assert_close(sparse_conv3d(x, maps, w, len(out)),
                                   sparse_conv3d(x, maps, w, len(out), native=False), rtol=0, atol=0)
    finally:
        native.library.cache_clear()


def test_gradient_and_integer_features_take_the_torch_path():
    c = small_scene(7)[:300]
    out, maps = kernel_map(c)
    x = torch.randn(len(c), 3, requires_grad=True)
    w = torch.randn(27, 3, 2, requires_grad=True)
    y = sparse_conv3d(x, maps, w, len(out))
    y.sum().backward()
    assert x.grad is not None and w.grad is not None and w.grad.abs().sum() > 0
    xi = torch.randint(-3, 4, (len(c), 3))
    wi = torch.randint(-3, 4, (27, 3, 2))
    ref = conv3d_dense_at(c, xi.double(), wi.double(), 1, out)
    assert torch.equal(sparse_conv3d(xi, maps, wi, len(out)).double(), ref)


def scene_digest(threads: int) -> str:
    """SHA-256 of a stride-2 lidar scene's output coordinates, kernel maps and convolution output."""
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        c = scenes.scene("lidar", 0.2, seed=5, n_azimuth=512)
        out, maps = kernel_map(c, 3, 2)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(len(c), 32, generator=g)
        w = torch.randn(27, 32, 48, generator=g)
        h = hashlib.sha256(out.tobytes())
        for m in maps:
            h.update(m.tobytes())
        h.update(sparse_conv3d(x, maps, w, len(out)).numpy().tobytes())
        return h.hexdigest()
    finally:
        torch.set_num_threads(old)


def test_deterministic_across_runs_and_threads():
    """Maps and float32 outputs are bit-identical across processes and torch thread counts."""
    script = f"from {__name__} import scene_digest; print(scene_digest(1))"
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True).stdout.strip()}
    digests |= {scene_digest(t) for t in (2, 1)}
    assert len(digests) == 1, digests


def test_bad_conv_input():
    c = small_scene(0)[:50]
    out, maps = kernel_map(c)
    x = torch.zeros(len(c), 4)
    with pytest.raises(ValueError, match=r"weight must be \(n_offsets=27, C_in=4, C_out\)"):
        sparse_conv3d(x, maps, torch.zeros(27, 3, 2), len(out))
    with pytest.raises(ValueError, match="features must be"):
        sparse_conv3d(torch.zeros(len(c)), maps, torch.zeros(27, 4, 2), len(out))
    with pytest.raises(ValueError, match="index outside"):
        sparse_conv3d(x, maps, torch.zeros(27, 4, 2), len(out) - 5)


# ---------------------------------------------------------------- implicit GEMM grouping

@pytest.mark.parametrize("stride", [1, 2])
def test_implicit_gemm_equals_gather_scatter(stride):
    rng = np.random.default_rng(11)
    c = small_scene(5)[:700]
    out, maps = kernel_map(c, 3, stride)
    nbr = neighbor_table(maps, len(out))
    x, w = int_valued(rng, (len(c), 5)), int_valued(rng, (27, 5, 4))
    ref = sparse_conv3d(x, maps, w, len(out))
    for splits, reorder, tile in [(1, False, 64), (1, True, 32), (3, True, 16), (27, True, 32),
                                  (2, False, 7)]:
        y = implicit_gemm_conv(x, nbr, w, plan(nbr, splits=splits, reorder=reorder), tile=tile)
        assert torch.equal(y, ref), (splits, reorder, tile)


def test_neighbor_table_and_plan():
    c = np.array([[0, 0, 0], [1, 0, 0], [5, 5, 5]])
    out, maps = kernel_map(c)
    nbr = neighbor_table(maps, len(out))
    assert nbr[:, 13].tolist() == [0, 1, 2]
    assert nbr[0, 14] == 1 and nbr[1, 12] == 0 and (nbr >= 0).sum() == 5
    groups = plan(nbr, splits=3)
    assert [g.offsets.tolist() for g in groups] == [list(range(0, 9)), list(range(9, 18)),
                                                    list(range(18, 27))]
    assert groups[1].order.tolist() == [1, 0, 2]     # offset 12 present first, then 14 (row 0)
    assert all(g.order.tolist() == [0, 1, 2] for g in plan(nbr, splits=2, reorder=False))
    for bad in (0, 28, 1.0):
        with pytest.raises(ValueError, match="splits must be"):
            plan(nbr, splits=bad)


def test_padded_mac_accounting():
    c = small_scene(6)
    out, maps = kernel_map(c)
    nbr = neighbor_table(maps, len(out))
    n, useful = len(out), sum(len(m) for m in maps)
    one = mac_counts(nbr, plan(nbr, reorder=False), tile=1, c_in=3, c_out=5)
    assert one["useful"] == useful * 15 and one["computed"] == one["useful"]      # no padding at tile 1
    full = mac_counts(nbr, plan(nbr, reorder=False), tile=n, c_in=1, c_out=1)
    used = sum(1 for m in maps if len(m))
    assert full["computed"] == used * n                                           # one tile: dense
    per = mac_counts(nbr, plan(nbr, splits=27), tile=16)
    # One offset per group, present rows first: each offset pads only its last tile.
    assert per["computed"] == sum(min(-(-len(m) // 16) * 16, n) for m in maps)
    base = mac_counts(nbr, plan(nbr, reorder=False), tile=64)["computed"]
    sorted_ = mac_counts(nbr, plan(nbr), tile=64)["computed"]
    split = mac_counts(nbr, plan(nbr, splits=3), tile=64)["computed"]
    assert base > sorted_ > split >= useful
