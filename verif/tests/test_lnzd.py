# amaranth: UnusedElaboratable=no
"""The LNZD tree, exhaustively for 8 lanes and on random masks for 64, in Amaranth's simulator."""

import random

import pytest
from amaranth.sim import Simulator

from pyhdl.eie.activation_scanner import ActivationScanner
from pyhdl.eie.lnzd import LeadingNonzeroDetector


def lowest_set_bit(mask: int):
    return (mask & -mask).bit_length() - 1 if mask else None


@pytest.mark.parametrize("width, masks", [(8, range(256)), (64, [random.Random(1).getrandbits(64) >> s
                                                                   for s in range(64)] + [0, 1 << 63])])
def test_lowest_set_bit(width, masks):
    dut = LeadingNonzeroDetector(width=width)
    seen = []

    async def bench(ctx):
        for mask in masks:
            ctx.set(dut.mask, mask)
            seen.append((mask, ctx.get(dut.valid), ctx.get(dut.index)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    for mask, valid, index in seen:
        want = lowest_set_bit(mask)
        assert valid == (want is not None), mask
        if valid:
            assert index == want, (hex(mask), index, want)


@pytest.mark.parametrize("width", [0, 1, 3, 12])
def test_width_must_be_power_of_two(width):
    with pytest.raises(ValueError):
        LeadingNonzeroDetector(width=width)


@pytest.mark.parametrize("max_cols", [8, 9, 255, 256, 257, 1024, 1025])
def test_scanner_column_field_holds_the_last_column(max_cols):
    """The broadcast's column field holds column ``max_cols - 1`` and is no wider than that needs."""
    width = ActivationScanner(max_cols=max_cols).acts.payload.col.shape().width
    assert 1 << width > max_cols - 1 >= 1 << (width - 1)
