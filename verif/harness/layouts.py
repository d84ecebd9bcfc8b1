"""Amaranth layouts ↔ integers, for testbenches: a stream payload is one integer in cocotb.

``pack(layout, value)`` turns nested dicts / lists (``StructLayout`` → dict, ``ArrayLayout`` →
list, plain shapes → int, negative ints allowed for signed fields) into the payload integer;
``unpack`` is its inverse (signed fields come back negative).
"""

from amaranth.hdl import Shape
from amaranth.lib import data


def pack(layout, value) -> int:
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            out |= pack(field.shape, value[name]) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        size = Shape.cast(layout.elem_shape).width
        if len(value) != layout.length:
            raise ValueError(f"array of {layout.length} elements, got {len(value)}")
        out = 0
        for i, v in enumerate(value):
            out |= pack(layout.elem_shape, v) << (i * size)
        return out
    shape = Shape.cast(layout)
    v = int(value)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    if not lo <= v <= hi:
        raise ValueError(f"{v} does not fit {shape}")
    return v & ((1 << shape.width) - 1)


def unpack(layout, value: int):
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, value >> field.offset) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        size = Shape.cast(layout.elem_shape).width
        return [unpack(layout.elem_shape, value >> (i * size)) for i in range(layout.length)]
    shape = Shape.cast(layout)
    v = value & ((1 << shape.width) - 1)
    if shape.signed and v >> (shape.width - 1):
        v -= 1 << shape.width
    return v
