"""Stream formats of the mapping unit: beats of ``width`` lanes.

**Key beat** (``key_beat_layout``): ``lanes[i] = {key, idx}``, ``keep`` (bit ``i``: lane ``i``
holds an element) and ``last`` (the final beat of a list). A list of ``n`` keys travels as
``ceil(n / width)`` beats (one beat with ``keep = 0`` when ``n = 0``); every beat but the last is
full, the last holds ``0 .. width`` elements, and kept lanes always form a prefix
(``keep = 2**m - 1``). In a *sorted* list the elements ascend in lane order and beat order by
``(key, idx)``: equal keys ascend by ``idx``, which is a stable sort when ``idx`` is the element's
position in its original list (how the mapping unit numbers points). Lanes outside ``keep``
are don't-cares: no block looks at them.

**Query beat** (``query_beat_layout``): a key beat of output keys plus the kernel ``offset``
(``x, y, z``, signed ``coord_bits`` each) by which the intersection unit shifts them; every
beat of one list carries the same offset.

**Pair beat** (``pair_beat_layout``): ``lanes[i] = {in_idx, out_idx}``, ``keep`` a prefix and
``last`` on the final beat of one offset's pairs. Any beat may hold ``0 .. width`` pairs (one beat
per intersection step that matched something); the last one may be empty.
"""

from amaranth.hdl import Cat, signed
from amaranth.lib import data

from pyhdl.params import check_int
from sw.pointcloud.keys import KeyFormat


def coord_beat_layout(width: int, coord_bits: int, batch_bits: int, index_bits: int) -> data.StructLayout:
    """**Coordinate beat**: ``lanes[i] = {batch, x, y, z, idx}`` (coordinates signed), ``keep``,
    ``last``, framed like a key beat (lists of points as they come from the host)."""
    lane = data.StructLayout({"batch": batch_bits, "x": signed(coord_bits), "y": signed(coord_bits),
                              "z": signed(coord_bits), "idx": index_bits})
    return data.StructLayout({"lanes": data.ArrayLayout(lane, width), "keep": width, "last": 1})


def key_lane_layout(key_bits: int, index_bits: int) -> data.StructLayout:
    return data.StructLayout({"key": key_bits, "idx": index_bits})


def key_beat_layout(width: int, key_bits: int, index_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "lanes": data.ArrayLayout(key_lane_layout(key_bits, index_bits), width),
        "keep": width,
        "last": 1,
    })


def offset_layout(coord_bits: int) -> data.StructLayout:
    return data.StructLayout({"x": signed(coord_bits), "y": signed(coord_bits), "z": signed(coord_bits)})


def query_beat_layout(width: int, key_bits: int, index_bits: int, coord_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "lanes": data.ArrayLayout(key_lane_layout(key_bits, index_bits), width),
        "keep": width,
        "last": 1,
        "offset": offset_layout(coord_bits),
    })


def pair_beat_layout(width: int, index_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "lanes": data.ArrayLayout(data.StructLayout({"in_idx": index_bits, "out_idx": index_bits}), width),
        "keep": width,
        "last": 1,
    })


def rank(lane, kept):
    """The value lanes are ordered by: ``(not kept, key, idx)`` as one unsigned number, so empty
    lanes rank above every element and equal keys order by ``idx``."""
    return Cat(lane.idx, lane.key, ~kept)


def check_key_format(coord_bits: int, batch_bits: int) -> KeyFormat:
    """The key format of a block's ``coord_bits``/``batch_bits`` parameters, after checking them."""
    return KeyFormat(check_int("coord_bits", coord_bits, minimum=2), check_int("batch_bits", batch_bits, minimum=0))
