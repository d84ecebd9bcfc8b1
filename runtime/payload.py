"""Stream payloads of any width from NumPy field arrays, for cocotb drivers (vectorised).

``pack_payloads(layout, n, values=..., acts=..., last=...)`` turns per-item field arrays into the
payload integers of an Amaranth ``StructLayout`` whose fields are plain shapes or
``ArrayLayout``s of elements up to 63 bits (a nested element is given as its whole bit pattern).
Signed values are stored two's complement in their field width.
"""

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data


def _leaves(layout: data.StructLayout):
    """``(name, offset, element width, element count)`` of every top-level field."""
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.ArrayLayout):
            yield name, field.offset, Shape.cast(shape.elem_shape).width, shape.length
        else:
            yield name, field.offset, Shape.cast(shape).width, None


def pack_payloads(layout: data.StructLayout, n: int, **fields) -> list:
    """``n`` payload integers: ``fields[name]`` has shape ``(n,)`` for a plain field and
    ``(n, length)`` for an ``ArrayLayout`` one. Every field of ``layout`` must be given."""
    size = data.Layout.cast(layout).size
    bits = np.zeros((n, size), dtype=np.uint8)
    names = [name for name, *_ in _leaves(layout)]
    if set(names) != set(fields):
        raise ValueError(f"fields {sorted(fields)} do not match the layout's {names}")
    for name, offset, width, length in _leaves(layout):
        a = np.asarray(fields[name], dtype=np.int64)
        want = (n,) if length is None else (n, length)
        if a.shape != want:
            raise ValueError(f"field {name!r} has shape {a.shape}, expected {want}")
        a = (a.reshape(n, -1) & ((1 << width) - 1))               # two's complement in the field
        elem_bits = (a[:, :, None] >> np.arange(width)) & 1       # (n, count, width), LSB first
        bits[:, offset: offset + elem_bits.shape[1] * width] = elem_bits.reshape(n, -1)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def to_signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) & 1 else value
