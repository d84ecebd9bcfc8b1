"""Stream payload packing (``runtime/payload.py``): round trips over nested layouts, signed fields,
whole-bit-pattern fields, and the bit positions Amaranth gives each field."""

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from pyhdl.pointacc.streams import query_beat_layout
from pyhdl.sparse24.sparse_mac import sparse_beat_layout
from runtime.payload import pack, unpack


def test_query_beats_round_trip():
    """Arrays of structs of fields wider than 32 bits, a nested struct with signed fields."""
    rng = np.random.default_rng(0)
    n, w = 40, 8
    layout = query_beat_layout(w, 56, 20, 16)
    value = {"lanes": {"key": rng.integers(0, 1 << 56, (n, w)), "idx": rng.integers(0, 1 << 20, (n, w))},
             "keep": rng.integers(0, 1 << w, n), "last": rng.integers(0, 2, n),
             "offset": {c: rng.integers(-(1 << 15), 1 << 15, n) for c in "xyz"}}
    words = pack(layout, value)
    assert len(words) == n and max(words) < 1 << layout.size
    back = unpack(layout, words)
    assert np.array_equal(back["lanes"]["key"], value["lanes"]["key"])
    assert np.array_equal(back["lanes"]["idx"], value["lanes"]["idx"])
    assert all(np.array_equal(back["offset"][c], value["offset"][c]) for c in "xyz")
    one = unpack(layout, words[3])
    assert one["lanes"]["key"] == value["lanes"]["key"][3].tolist() and one["offset"]["z"] == value["offset"]["z"][3]


def test_bit_positions_follow_the_layout():
    layout = data.StructLayout({"a": 3, "b": signed(5), "c": data.ArrayLayout(2, 3)})
    word = pack(layout, {"a": [5], "b": [-2], "c": [[1, 2, 3]]})[0]
    assert word == 5 | (-2 & 31) << 3 | (1 | 2 << 2 | 3 << 4) << 8
    assert unpack(layout, word) == {"a": 5, "b": -2, "c": [1, 2, 3]}


def test_struct_elements_as_bit_patterns():
    """2:4 metadata given as ``i0 | i1 << 2`` per group, as ``sw.pack`` stores it."""
    rng = np.random.default_rng(1)
    n, groups = 25, 4
    fields = dict(values=rng.integers(-128, 128, (n, 2 * groups)), meta=rng.integers(0, 16, (n, groups)),
                  acts=rng.integers(-128, 128, (n, 4 * groups)), last=rng.integers(0, 2, n))
    back = unpack(sparse_beat_layout(groups), pack(sparse_beat_layout(groups), fields))
    assert np.array_equal(back["meta"]["i0"] | back["meta"]["i1"] << 2, fields["meta"])
    assert np.array_equal(back["values"], fields["values"]) and np.array_equal(back["acts"], fields["acts"])


def test_plain_signed_payload():
    assert unpack(signed(32), [(1 << 32) - 5, 7]).tolist() == [-5, 7]
    assert pack(signed(32), [-5, 7]) == [(1 << 32) - 5, 7]


@pytest.mark.parametrize("value, message", [
    ({"a": [8], "b": [0]}, "does not fit the 3-bit unsigned"),
    ({"a": [0], "b": [16]}, "does not fit the 5-bit signed"),
    ({"a": [0]}, "do not match"),
    ({"a": [0, 1], "b": [0]}, "shape"),
])
def test_bad_values_rejected(value, message):
    with pytest.raises(ValueError, match=message):
        pack(data.StructLayout({"a": 3, "b": signed(5)}), value)
