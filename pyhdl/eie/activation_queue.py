from amaranth.hdl import Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from pyhdl.eie.pointer_read import column_layout
from pyhdl.params import bits_for, check_int


def activation_layout(col_width: int, act_width: int) -> data.StructLayout:
    """A nonzero input activation: its column index and its signed value, the CSC decoder's
    input column with its value."""
    return column_layout(col_width, act_width)


class ActivationQueue(wiring.Component):
    """FIFO of ``(col, value)`` pairs in front of a PE; absorbs load imbalance between PEs.

    A first-word-fall-through synchronous FIFO (``amaranth.lib.fifo.SyncFIFO``) of
    ``queue_depth`` entries: an activation written at one clock edge can be read in the next
    cycle. ``full`` is ``level == queue_depth``; a full queue accepts no write, even in a cycle
    in which it is read (the array's broadcast stalls on ``full``).

    Attributes
    ----------
    push : In(stream of activation_layout)
    pop : Out(stream of activation_layout)
    full : Out(1)
    level : Out(range(queue_depth + 1))
    """

    def __init__(self, *, queue_depth: int, col_width: int, act_width: int):
        self.queue_depth = check_int("queue_depth", queue_depth)
        self.layout = activation_layout(col_width, act_width)
        super().__init__({
            "push": In(stream.Signature(self.layout)),
            "pop": Out(stream.Signature(self.layout)),
            "full": Out(1),
            "level": Out(bits_for(queue_depth)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.queue_depth == 1:
            return self._single_slot(m)
        m.submodules.fifo = q = fifo.SyncFIFO(width=self.layout.size, depth=self.queue_depth)
        connect(m, wiring.flipped(self.push), q.w_stream)
        connect(m, q.r_stream, wiring.flipped(self.pop))
        m.d.comb += [
            self.full.eq(q.level == self.queue_depth),
            self.level.eq(q.level),
        ]
        return m

    def _single_slot(self, m):
        """Depth 1: a register with SyncFIFO's behaviour (Amaranth's SyncFIFO would give the
        Verilog zero-width pointers)."""
        full = Signal()
        data_ = Signal(self.layout.size)
        m.d.comb += [
            self.push.ready.eq(~full),
            self.pop.valid.eq(full),
            self.pop.payload.eq(data_),
            self.full.eq(full),
            self.level.eq(full),
        ]
        with m.If(self.push.valid & ~full):
            m.d.sync += [data_.eq(self.push.payload), full.eq(1)]
        with m.Elif(self.pop.ready & full):
            m.d.sync += full.eq(0)
        return m
