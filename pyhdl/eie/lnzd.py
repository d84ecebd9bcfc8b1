from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int


class LeadingNonzeroDetector(wiring.Component):
    """Finds the lowest set bit of ``mask`` through a tree of LNZD nodes (combinational).

    ``width`` (a power of two) leaves; each node takes its two children's ``(valid, index)`` and
    passes on the left one when it is valid, else the right one with its index extended by a
    1 bit: ``log2(width)`` levels of 2:1 muxes, the structure of EIE's LNZD quadtree.

    Attributes
    ----------
    mask : In(width)
    valid : Out(1)
        Some bit of ``mask`` is set.
    index : Out(log2(width))
        Position of the lowest set bit (meaningless while ``valid`` is low).
    """

    def __init__(self, *, width: int):
        self.width = check_int("width", width, minimum=2)
        if width & (width - 1):
            raise ValueError(f"width must be a power of two, got {width}")
        self.index_width = width.bit_length() - 1
        super().__init__({"mask": In(width), "valid": Out(1), "index": Out(self.index_width)})

    def elaborate(self, platform):
        m = Module()
        # Level 0: every bit is a leaf (valid = the bit, empty index).
        nodes = [(self.mask[i], Const(0, 0)) for i in range(self.width)]
        while len(nodes) > 1:
            nodes = [(lv | rv, Mux(lv, Cat(li, Const(0, 1)), Cat(ri, Const(1, 1))))
                     for (lv, li), (rv, ri) in zip(nodes[0::2], nodes[1::2], strict=True)]
        valid, index = nodes[0]
        m.d.comb += [self.valid.eq(valid), self.index.eq(index)]
        return m
