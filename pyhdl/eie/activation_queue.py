from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.pointer_read import column_layout
from pyhdl.params import bits_for, check_int
from pyhdl.replicas import replicas


def activation_layout(col_width: int, act_width: int) -> data.StructLayout:
    """A nonzero input activation: its column index and its signed value, the CSC decoder's
    input column with its value."""
    return column_layout(col_width, act_width)


class ActivationQueue(wiring.Component):
    """FIFO of ``(col, value)`` pairs in front of a PE; absorbs load imbalance between PEs.

    A first-word-fall-through synchronous FIFO of ``queue_depth`` entries (``amaranth.lib.fifo.
    SyncFIFO``'s behaviour): an activation written at one clock edge can be read in the next
    cycle. ``full`` is ``level == queue_depth``; a full queue accepts no write, even in a cycle
    in which it is read (the array's broadcast stalls before that).

    Storage is distributed RAM (an asynchronous read port). ``push.ready`` and ``pop.valid`` are
    registers, computed from the next level, and the storage's write side has its own copy of
    the not-full flag: the write enable that reaches the RAM and its pointer and the one that
    counts the level are two LUTs from flip-flops, so neither waits on the other wherever the
    placer puts the RAM (in a 16-PE array one LUT on that round trip, placed by the RAM ~40
    tiles from the level register, was the critical path).

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
        depth = self.queue_depth
        m.submodules.storage = storage = memory.Memory(shape=self.layout.size, depth=depth, init=[])
        w_port, r_port = storage.write_port(), storage.read_port(domain="comb")
        produce, consume = Signal(range(depth)), Signal(range(depth))
        level = Signal(range(depth + 1))
        not_empty = Signal()
        # Two copies of the not-full flag, kept apart in synthesis: one for the level and
        # `push.ready`, one for the write enable of the RAM and its pointer.
        not_full_next = Signal()
        not_full, store_ready = replicas(m, not_full_next, 2, "not_full", init=1)
        store = self.push.valid & store_ready
        write = self.push.valid & not_full
        read = self.pop.ready & not_empty
        # The next state for no read and for one, from registers; the read (the far end's ready)
        # selects last, one LUT in front of each flip-flop. The candidates are kept wires so that
        # synthesis does not fold the read back into the adder.
        held = Signal(range(depth + 1), attrs={"keep": 1})            # level + write
        freed = Signal(range(depth + 1), attrs={"keep": 1})           # level + write - 1
        held_not_full, held_not_empty, freed_not_empty = (
            Signal(name=n, attrs={"keep": 1}) for n in ("held_not_full", "held_not_empty", "freed_not_empty"))
        m.d.comb += [
            held.eq(level + write), freed.eq(level + write - 1),
            held_not_full.eq(held != depth), held_not_empty.eq(held != 0), freed_not_empty.eq(held > 1),
            not_full_next.eq(read | held_not_full),       # a read leaves at most depth - 1
            w_port.addr.eq(produce), w_port.data.eq(self.push.payload), w_port.en.eq(store),
            r_port.addr.eq(consume), self.pop.payload.eq(r_port.data),
            self.push.ready.eq(not_full), self.pop.valid.eq(not_empty),
            self.full.eq(~not_full),
            self.level.eq(level),
        ]
        m.d.sync += [level.eq(Mux(read, freed, held)), not_empty.eq(Mux(read, freed_not_empty, held_not_empty))]
        with m.If(store):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(read):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
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
