"""The PyTorch/CUTLASS semi-structured layout export against PyTorch's own conversion (CPU).

``torch.sparse._semi_structured_conversions.sparse_semi_structured_from_dense_cutlass`` and
``..._to_dense_cutlass`` run on CPU tensors; ``to_sparse_semi_structured`` (the tensor subclass
and its kernels) needs CUDA and is not exercised here.
"""

import numpy as np
import pytest
import torch
from torch.sparse._semi_structured_conversions import (
    sparse_semi_structured_from_dense_cutlass,
    sparse_semi_structured_to_dense_cutlass,
)

from sw.pack import cutlass_meta, from_cutlass, mask_24, pack_24, to_cutlass

SHAPES = {
    "int8": [(16, 64), (32, 128), (48, 192), (64, 512)],
    "float16": [(32, 32), (64, 64), (32, 96), (96, 256)],
    "bfloat16": [(32, 32), (64, 160)],
}


def random_24(rng, rows, k, p_drop):
    w = rng.integers(-128, 128, (rows, k))
    w = np.where(mask_24(rng.random((rows, k))), w, 0)
    return np.where(rng.random((rows, k)) < p_drop, 0, w)


def cases():
    for dtype, shapes in SHAPES.items():
        for rows, k in shapes:
            for p_drop in (0.0, 0.4, 0.9):
                yield dtype, rows, k, p_drop


@pytest.mark.parametrize("dtype,rows,k,p_drop", list(cases()))
def test_export_matches_pytorch_bit_for_bit(dtype, rows, k, p_drop):
    rng = np.random.default_rng(rows * 1000 + k + int(10 * p_drop))
    w = random_24(rng, rows, k, p_drop)
    if dtype != "int8":
        w = w * 0.25                               # non-integers, exact in float16 and bfloat16
    tdtype = getattr(torch, dtype)
    dense = torch.from_numpy(w).to(tdtype)
    ref_packed, ref_meta = sparse_semi_structured_from_dense_cutlass(dense)

    values, meta = pack_24(w)
    packed, meta_words = to_cutlass(values, meta, tdtype)
    assert packed.dtype == ref_packed.dtype and meta_words.dtype == ref_meta.dtype
    assert packed.shape == ref_packed.shape and meta_words.shape == ref_meta.shape
    assert torch.equal(packed.view(torch.uint8) if dtype == "int8" else packed.view(torch.int16),
                       ref_packed.view(torch.uint8) if dtype == "int8" else ref_packed.view(torch.int16))
    assert torch.equal(meta_words, ref_meta)
    assert np.array_equal(cutlass_meta(meta, dtype), ref_meta.numpy())

    # PyTorch decodes our export, and we decode PyTorch's, to the same matrix.
    assert torch.equal(sparse_semi_structured_to_dense_cutlass(packed, meta_words), dense)
    back = from_cutlass(ref_packed, ref_meta)
    assert np.array_equal(back.meta, meta) and np.array_equal(back.values, values)


def test_groups_with_fewer_nonzeros_agree_with_pytorch():
    """The metadata docs/spec.md §4 fixes for 0 and 1 nonzeros is PyTorch's, in every group slot."""
    patterns = [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    w = np.array([sum((patterns[(g + r) % 5] for g in range(16)), []) for r in range(16)], dtype=np.int8)
    ref_packed, ref_meta = sparse_semi_structured_from_dense_cutlass(torch.from_numpy(w))
    values, meta = pack_24(w)
    assert torch.equal(to_cutlass(values, meta, torch.int8)[1], ref_meta)
    assert np.array_equal(from_cutlass(ref_packed, ref_meta).meta, meta)


def test_third_nonzero_rejected_where_pytorch_drops_it():
    w = np.zeros((16, 64), dtype=np.int8)
    w[5, 8:11] = [1, 2, 3]
    packed, meta = sparse_semi_structured_from_dense_cutlass(torch.from_numpy(w))
    assert not torch.equal(sparse_semi_structured_to_dense_cutlass(packed, meta), torch.from_numpy(w))
    with pytest.raises(ValueError, match="row 5, group 2"):
        pack_24(w)


def test_export_bad_input():
    values, meta = pack_24(np.zeros((16, 64), dtype=np.int8))
    with pytest.raises(ValueError, match="float32 semi-structured mode is 1:2"):
        to_cutlass(values, meta, torch.float32)
    with pytest.raises(ValueError, match="no 2:4 CUTLASS layout"):
        to_cutlass(values, meta, torch.int32)
    with pytest.raises(ValueError, match="rows a multiple of 32 and K a multiple of 32"):
        to_cutlass(values, meta, torch.float16)              # 16 rows
    v32, m32 = pack_24(np.zeros((16, 32), dtype=np.int8))
    with pytest.raises(ValueError, match="K a multiple of 64; got rows=16, K=32"):
        to_cutlass(v32, m32, "int8")
    with pytest.raises(ValueError, match=r"values\[0, 0\] = 300 is not exactly representable as int8"):
        to_cutlass(np.full(values.shape, 300), meta, torch.int8)
    with pytest.raises(ValueError, match="not exactly representable as float16"):
        to_cutlass(np.full((32, 16), 0.1), pack_24(np.zeros((32, 32))).meta, torch.float16)
    bad_meta = meta.copy()
    bad_meta[3, 7] = 1 | 1 << 2
    with pytest.raises(ValueError, match="row 3, group 7"):
        to_cutlass(values, bad_meta, torch.int8)
    with pytest.raises(ValueError, match="int32 .* or int16"):
        from_cutlass(torch.zeros(16, 32, dtype=torch.int8), torch.zeros(16, 2, dtype=torch.int64))


@pytest.mark.filterwarnings("ignore:The PyTorch API of SparseSemiStructuredTensor is in prototype")
@pytest.mark.parametrize("dtype", ["int8", "float16"])
def test_export_builds_the_pytorch_tensor_subclass(dtype):
    """PyTorch's CUTLASS tensor subclass, built on CPU from our export, densifies to the matrix
    (its matmul kernels and ``to_sparse_semi_structured`` need CUDA and are not run here)."""
    from torch.sparse import SparseSemiStructuredTensorCUTLASS

    rows, k = (32, 128) if dtype == "int8" else (64, 64)
    w = random_24(np.random.default_rng(9), rows, k, 0.3)
    packed, meta = to_cutlass(*pack_24(w), dtype)
    t = SparseSemiStructuredTensorCUTLASS(torch.Size(w.shape), packed=packed, meta=meta, packed_t=None,
                                          meta_t=None, compressed_swizzled_bitmask=None)
    assert t.shape == w.shape and t.dtype == getattr(torch, dtype)
    assert torch.equal(t.to_dense(), torch.from_numpy(w).to(getattr(torch, dtype)))
