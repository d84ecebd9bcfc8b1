"""Export of docs/spec.md §4's ``(values, meta)`` to the layout of PyTorch's semi-structured sparse tensors.

PyTorch's CUTLASS backend (``torch.sparse.SparseSemiStructuredTensorCUTLASS``) keeps a 2:4 matrix
``(rows, K)`` as ``packed`` — exactly our ``values``, ``(rows, K // 2)`` — and ``meta``: the same
4-bit group fields ``i0 | i1 << 2``, packed into words (8 fields an int32 word for int8 data, 4
an int16 word for float16/bfloat16; field ``j`` at bits ``4j..4j+3``) and then scattered into
CUTLASS's ``ColumnMajorInterleaved<2>`` order with its 2×2 swizzle. The layout needs ``rows`` a
multiple of 16 (int8) or 32 (16-bit) and ``K`` a multiple of 64 (int8) or 32 (16-bit): the swizzle
pairs metadata words, and PyTorch's own conversion fails on an odd count. The tensor subclass
(``to_sparse_semi_structured``) additionally needs CUDA and at least 128 (int8) or 64 (16-bit)
columns.

PyTorch's float32 mode is 1:2 on pairs, not 2:4, and its own conversion keeps only two of three
nonzeros silently; this module offers int8/float16/bfloat16 only and rejects both cases.
"""

import numpy as np

from sw.formats import GROUP_24, KEPT_24, META_WIDTH
from sw.pack.sparse24 import Packed24, check_meta

# dtype name -> (bits of a metadata word, row multiple of the interleave, numpy dtype of the word)
_LAYOUT = {
    "int8": (32, 16, np.int32),
    "float16": (16, 32, np.int16),
    "bfloat16": (16, 32, np.int16),
}


def _dtype_name(dtype) -> str:
    name = str(dtype).removeprefix("torch.")
    name = {"half": "float16", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8"}.get(name, name)
    if name not in _LAYOUT:
        why = " (PyTorch's float32 semi-structured mode is 1:2, not 2:4)" if name in ("float32", "float") \
            else ""
        raise ValueError(f"dtype {dtype} has no 2:4 CUTLASS layout{why}; use one of {sorted(_LAYOUT)}")
    return name


def meta_reorder_offsets(rows: int, meta_cols: int, word_bits: int) -> np.ndarray:
    """Flat position in the reordered metadata of each word of the row-major ``(rows, meta_cols)``
    word matrix (CUTLASS ``reorder_meta``: ColumnMajorInterleaved<2> plus its 2×2 swizzle)."""
    r = np.repeat(np.arange(rows)[:, None], meta_cols, axis=1)
    c = np.repeat(np.arange(meta_cols)[None, :], rows, axis=0)
    block, interweave = (32, 4) if word_bits == 16 else (16, 2)
    r = r // block * block + (r % 8) * interweave + (r % block) // 8
    swap = ((r % 2 == 0) & (c % 2 == 1)).astype(np.int64) - ((r % 2 == 1) & (c % 2 == 0))
    r, c = r + swap, c - swap
    return ((c // 2) * rows * 2 + r * 2 + c % 2).reshape(-1)


def cutlass_meta(meta, dtype) -> np.ndarray:
    """docs/spec.md §4 ``meta`` ``(rows, K // 4)`` → CUTLASS's reordered metadata words for ``dtype``
    (int32 ``(rows, K // 32)`` for int8, int16 ``(rows, K // 16)`` for float16/bfloat16)."""
    word_bits, row_multiple, word_dtype = _LAYOUT[_dtype_name(dtype)]
    mt = check_meta(meta)
    rows, n_groups = mt.shape
    per_word = word_bits // META_WIDTH
    k_multiple = 2 * per_word * GROUP_24     # the 2x2 swizzle pairs metadata columns
    if rows % row_multiple or (n_groups * GROUP_24) % k_multiple:
        raise ValueError(f"the {_dtype_name(dtype)} CUTLASS layout needs rows a multiple of {row_multiple} "
                         f"and K a multiple of {k_multiple}; got rows={rows}, K={n_groups * GROUP_24}")
    shifts = META_WIDTH * np.arange(per_word, dtype=np.uint64)
    fields = mt.astype(np.uint64).reshape(rows, n_groups // per_word, per_word)
    words = (fields << shifts).sum(axis=-1, dtype=np.uint64)
    words = words.astype(f"uint{word_bits}").view(word_dtype)
    out = np.empty(words.size, dtype=word_dtype)
    out[meta_reorder_offsets(rows, words.shape[1], word_bits)] = words.reshape(-1)
    return out.reshape(words.shape)


def _torch_dtype(name):
    import torch

    return getattr(torch, name)


def to_cutlass(values, meta, dtype):
    """``(packed, meta)`` torch CPU tensors in PyTorch's CUTLASS semi-structured layout, equal bit
    for bit to ``torch.sparse._semi_structured_conversions.sparse_semi_structured_from_dense_cutlass``
    on the dense matrix. ``dtype``: ``torch.int8``, ``torch.float16``, ``torch.bfloat16`` (or their
    names). Raises ``ValueError`` if a value does not convert to ``dtype`` exactly."""
    import torch

    name = _dtype_name(dtype)
    words = cutlass_meta(meta, name)
    v = np.asarray(values)
    if v.shape != (words.shape[0], KEPT_24 * np.asarray(meta).shape[1]):
        raise ValueError(f"values has shape {v.shape}; meta {np.asarray(meta).shape} needs "
                         f"({words.shape[0]}, {KEPT_24 * np.asarray(meta).shape[1]})")
    if v.dtype == np.bool_ or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
        raise ValueError(f"values must be numeric, got dtype {v.dtype}")
    src = torch.from_numpy(np.ascontiguousarray(v.astype(np.float64)))
    packed = src.to(_torch_dtype(name))
    lost = packed.to(torch.float64) != src
    if lost.any():
        r, c = (int(i) for i in torch.nonzero(lost)[0])
        raise ValueError(f"values[{r}, {c}] = {v[r, c]} is not exactly representable as {name}")
    return packed, torch.from_numpy(words)


def from_cutlass(packed, meta_reordered) -> Packed24:
    """Inverse of :func:`to_cutlass`: docs/spec.md §4 ``(values, meta)`` from PyTorch's CUTLASS layout
    (``values`` as float32 for float16/bfloat16, int8 for int8)."""
    import torch

    word_dtype = {torch.int32: np.int32, torch.int16: np.int16}.get(meta_reordered.dtype)
    if word_dtype is None:
        raise ValueError(f"CUTLASS metadata must be int32 (int8 data) or int16 (16-bit data), "
                         f"got {meta_reordered.dtype}")
    word_bits = 8 * np.dtype(word_dtype).itemsize
    rows, meta_cols = meta_reordered.shape
    per_word = word_bits // META_WIDTH
    if packed.dim() != 2 or packed.shape[0] != rows or packed.shape[1] * 2 != meta_cols * per_word * GROUP_24:
        raise ValueError(f"packed {tuple(packed.shape)} does not match the metadata "
                         f"{tuple(meta_reordered.shape)}")
    flat = meta_reordered.contiguous().numpy().reshape(-1)
    words = flat[meta_reorder_offsets(rows, meta_cols, word_bits)].view(f"uint{word_bits}").astype(np.int64)
    shifts = META_WIDTH * np.arange(per_word)
    meta = ((words.reshape(rows, meta_cols, 1) >> shifts) & ((1 << META_WIDTH) - 1)).reshape(rows, -1)
    check_meta(meta)
    vals = packed.numpy() if packed.dtype == torch.int8 else packed.to(torch.float32).numpy()
    return Packed24(vals.copy(), meta.astype(np.uint8))
