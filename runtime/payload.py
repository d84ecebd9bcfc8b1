"""Stream payloads ↔ NumPy arrays, vectorised over a batch of payloads (a payload is one integer
in cocotb).

A value mirrors its Amaranth layout, batch axis first: a plain shape is an integer array of
shape ``(n,)``; a ``StructLayout`` is a dict of its fields; an ``ArrayLayout`` is an array with
the element axis after the batch axis ``(n, length, ...)``, or, for elements that are structs, a
dict of such arrays (one per element field). A struct or array may also be given as its whole
bit pattern (an ``(n,)`` array of unsigned integers, say ``i0 | i1 << 2``). Signed fields are
negative numbers. Every leaf field is at most 63 bits wide.

``pack(layout, value)`` gives the ``n`` payload integers; ``unpack(layout, payloads)`` is its
inverse, and for a single integer gives the fields of that one payload.
"""

from collections.abc import Mapping

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

MAX_LEAF_WIDTH = 63    # leaves travel as int64


def _size(layout) -> int:
    return data.Layout.cast(layout).size if isinstance(layout, data.Layout) else Shape.cast(layout).width


def _leaves(layout, value, offset=0):
    """``(offset, width, signed, array)`` of every leaf of ``value`` (see the module docstring)."""
    if isinstance(layout, data.StructLayout) and isinstance(value, Mapping):
        names = [name for name, _ in layout]
        if set(names) != set(value):
            raise ValueError(f"fields {sorted(value)} do not match the layout's {names}")
        for name, field in layout:
            yield from _leaves(field.shape, value[name], offset + field.offset)
    elif isinstance(layout, data.ArrayLayout) and (isinstance(value, Mapping) or np.ndim(value) > 1):
        elem = _size(layout.elem_shape)
        for i in range(layout.length):
            yield from _leaves(layout.elem_shape, _element(value, i, layout.length), offset + i * elem)
    else:
        plain = not isinstance(layout, data.Layout)
        signed = plain and Shape.cast(layout).signed
        yield offset, _size(layout), signed, np.asarray(value, dtype=np.int64)


def _element(value, i, length):
    """Element ``i`` of an array value (of each field, for a dict of arrays)."""
    if isinstance(value, Mapping):
        return {k: _element(v, i, length) for k, v in value.items()}
    a = np.asarray(value)
    if a.ndim < 2 or a.shape[1] != length:
        raise ValueError(f"an array of {length} elements needs shape (n, {length}, ...), got {a.shape}")
    return a[:, i]


def _check_leaf(width, signed, a, n):
    if width > MAX_LEAF_WIDTH:
        raise ValueError(f"a {width}-bit field is wider than {MAX_LEAF_WIDTH} bits")
    if a.shape != (n,):
        raise ValueError(f"a field has shape {a.shape}, expected ({n},)")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if n and (a.min() < lo or a.max() > hi):
        bad = a[(a < lo) | (a > hi)][0]
        raise ValueError(f"{bad} does not fit the {width}-bit {'signed' if signed else 'unsigned'} field")


def pack(layout, value) -> list:
    """The payload integers of a batch ``value`` of ``layout`` (``n`` = the batch length)."""
    leaves = list(_leaves(layout, value))
    n = len(leaves[0][3]) if leaves and leaves[0][3].ndim else 0
    bits = np.zeros((n, _size(layout)), dtype=np.uint8)
    for offset, width, signed, a in leaves:
        _check_leaf(width, signed, a, n)
        a = a & ((1 << width) - 1)                                # two's complement in the field
        bits[:, offset: offset + width] = (a[:, None] >> np.arange(width)) & 1   # LSB first
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _unpack_bits(layout, bits):
    if isinstance(layout, data.StructLayout):
        return {name: _unpack_bits(f.shape, bits[:, f.offset: f.offset + _size(f.shape)]) for name, f in layout}
    if isinstance(layout, data.ArrayLayout):
        elem = _size(layout.elem_shape)
        parts = [_unpack_bits(layout.elem_shape, bits[:, i * elem: (i + 1) * elem]) for i in range(layout.length)]
        return _stack(parts)
    shape = Shape.cast(layout)
    if shape.width > MAX_LEAF_WIDTH:
        raise ValueError(f"a {shape.width}-bit field is wider than {MAX_LEAF_WIDTH} bits")
    v = bits.astype(np.int64) @ (np.int64(1) << np.arange(shape.width, dtype=np.int64))
    if shape.signed and shape.width:
        v = np.where(v >> (shape.width - 1) & 1, v | np.int64(-(1 << shape.width)), v)
    return v


def _stack(parts):
    if isinstance(parts[0], Mapping):
        return {k: _stack([p[k] for p in parts]) for k in parts[0]}
    return np.stack(parts, axis=1)


def _first(value):
    if isinstance(value, Mapping):
        return {k: _first(v) for k, v in value.items()}
    return value[0].tolist()


def unpack(layout, payloads):
    """The fields of payload integers ``payloads`` as a batch value of ``layout`` (signed fields
    negative); of one payload when ``payloads`` is an ``int`` (leaves as ints and lists)."""
    if isinstance(payloads, int | np.integer):
        return _first(unpack(layout, [int(payloads)]))
    size = _size(layout)
    nbytes = max(1, -(-size // 8))
    raw = np.frombuffer(b"".join(int(p).to_bytes(nbytes, "little") for p in payloads), dtype=np.uint8)
    bits = np.unpackbits(raw.reshape(len(payloads), nbytes), axis=1, bitorder="little")[:, :size]
    return _unpack_bits(layout, bits)
