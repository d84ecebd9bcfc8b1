from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int


class RegisterFIFO(wiring.Component):
    """A FIFO of ``depth`` entries in flip-flops (not LUT RAM: data written straight from a block
    RAM's output register meets a flip-flop's setup, not a LUT RAM's write setup).

    Amaranth ``lib.fifo`` port names. A word written in cycle ``t`` (``w_en``) is at ``r_data`` from
    cycle ``t + 1`` while it is the oldest; ``r_en`` with ``r_rdy`` takes it. A write while full
    (``w_rdy`` low) is dropped, even with a read in the same cycle: users bound what they write by a
    count of the words in flight, so it never happens. ``level`` is a register; the entries have no reset.

    Parameters
    ----------
    width : int
        Bits of a word.
    depth : int
        Entries.
    """

    def __init__(self, *, width: int, depth: int):
        self.width = check_int("width", width)
        self.depth = check_int("depth", depth)
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        slots = [Signal(self.width, name=f"slot{i}", reset_less=True) for i in range(self.depth)]
        w_ptr = Signal(range(self.depth))
        r_ptr = Signal(range(self.depth))
        write = self.w_en & self.w_rdy
        read = self.r_en & self.r_rdy
        m.d.comb += [self.w_rdy.eq(self.level != self.depth), self.r_rdy.eq(self.level != 0),
                     self.r_data.eq(Array(slots)[r_ptr])]
        for i, slot in enumerate(slots):
            with m.If(write & (w_ptr == i)):
                m.d.sync += slot.eq(self.w_data)

        def bump(ptr):
            return Mux(ptr == self.depth - 1, 0, ptr + 1)
        with m.If(write):
            m.d.sync += w_ptr.eq(bump(w_ptr))
        with m.If(read):
            m.d.sync += r_ptr.eq(bump(r_ptr))
        m.d.sync += self.level.eq(self.level + write - read)
        return m
