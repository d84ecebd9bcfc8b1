from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.register_fifo import RegisterFIFO
from pyhdl.params import bits_for, check_int
from pyhdl.primitives.block_ram import BlockRAM


def column_layout(col_width: int, value_width: int) -> data.StructLayout:
    """A column index and the value that travels with it (the PE's activation value)."""
    return data.StructLayout({"col": col_width, **value_field(value_width)})


def span_layout(ptr_width: int, value_width: int = 0) -> data.StructLayout:
    """A column's entries ``start .. end - 1`` in the sparse-matrix memory, whether there are none
    (``start >= end``) or one, and its value."""
    return data.StructLayout({"start": ptr_width, "end": ptr_width, "empty": 1, "single": 1,
                              **value_field(value_width)})


def value_field(value_width: int) -> dict:
    """The optional signed ``value`` field (a zero-width field would give Verilog an empty range)."""
    return {"value": signed(value_width)} if value_width else {}


class PointerRead(wiring.Component):
    """Looks up a column's start and end pointer from even/odd pointer banks.

    ``col_ptr`` (``max_cols + 1`` pointers) is split by index parity: the even bank holds
    ``col_ptr[0], col_ptr[2], ...``, the odd bank ``col_ptr[1], col_ptr[3], ...``. Column ``j``
    needs ``col_ptr[j]`` and ``col_ptr[j + 1]``, which always sit in different banks, so one read
    of each bank (even address ``(j + 1) >> 1``, odd address ``j >> 1``) yields both.

    Six stages: the input register, the banks' read register and output register (``BlockRAM``),
    which advance every cycle; a FIFO of the ordered pointers (``SLOTS`` entries); their
    difference; and the span register, which holds ``start``, ``end`` and the decoded ``empty``
    (``start >= end``) and ``single`` (one entry) flags. A column is accepted while fewer than
    ``LATENCY`` are in flight or a span leaves, so the stages behave as six that close up their
    bubbles, and the spans' ready reaches flip-flop enables only. A column out of range is dropped
    as it leaves the input register.

    Parameters
    ----------
    max_cols : int
        Columns the pointer memory can describe.
    max_entries : int
        Largest pointer value (the sentinel of a full sparse-matrix memory).
    value_width : int
        Bits of the signed value carried from each column to its span (0: none).
    col_ptr : sequence of int, optional
        Initial pointer image (at most ``max_cols + 1`` values); the rest reads as 0.

    Attributes
    ----------
    cols : In(stream of column_layout)
        Column indices (and values) to look up.
    spans : Out(stream of span_layout)
        ``(start, end, empty, single)`` of each accepted, in-range column.
    n_cols : In(bits_for(max_cols))
        Number of loaded columns. A column ``>= n_cols`` is consumed, produces no span, and sets
        ``error``.
    error : Out(1)
        Sticky, from the cycle after such a column enters stage 1; cleared by ``error_clear``
        (which must not meet a column in flight: the PE clears at layer start, idle).
    busy : Out(1)
        A column is in one of the stages.
    load : Out(memory.WritePort.Signature)
        Host write port: ``col_ptr[addr] = data`` at the next clock edge.

    Throughput one column per cycle; latency ``LATENCY`` = 6 cycles from acceptance to ``spans``.
    """

    LATENCY = 6
    SLOTS = 4       # the ordered-pointer FIFO's entries: LATENCY less stages 5 and 6

    def __init__(self, *, max_cols: int, max_entries: int, value_width: int = 0, col_ptr=None):
        self.max_cols = check_int("max_cols", max_cols)
        self.max_entries = check_int("max_entries", max_entries)
        self.value_width = check_int("value_width", value_width, minimum=0)
        self.col_width = bits_for(max_cols - 1)
        self.ptr_width = bits_for(max_entries)
        self.init = check_col_ptr(col_ptr, max_cols, max_entries)
        super().__init__({
            "cols": In(stream.Signature(column_layout(self.col_width, value_width))),
            "spans": Out(stream.Signature(span_layout(self.ptr_width, value_width))),
            "n_cols": In(bits_for(max_cols)),
            "error": Out(1),
            "error_clear": In(1),
            "busy": Out(1),
            "load": Out(memory.WritePort.Signature(addr_width=bits_for(max_cols), shape=self.ptr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        n_ptr = self.max_cols + 1
        # The host loads the banks while no column is read (no read-during-write bypass).
        m.submodules.even = even = BlockRAM(shape=self.ptr_width, depth=(n_ptr + 1) // 2, init=self.init[0::2],
                                            bypass=False)
        m.submodules.odd = odd = BlockRAM(shape=self.ptr_width, depth=n_ptr // 2, init=self.init[1::2], bypass=False)

        # Host load: the pointer index's low bit picks the bank.
        for bank, parity in ((even, 0), (odd, 1)):
            m.d.comb += [
                bank.write.addr.eq(self.load.addr >> 1),
                bank.write.data.eq(self.load.data),
                bank.write.en.eq(self.load.en & (self.load.addr[0] == parity)),
            ]

        # Stages 1-3 (the input register, the banks' read and output registers) advance every
        # cycle, so the spans' ready never reaches the block RAMs' clock enables. Stage 4 is a
        # FIFO of ordered pointers (flip-flops); stages 5 and 6 advance when the stage after them
        # is empty or advancing. A column is accepted while fewer than LATENCY are in flight (a
        # register count) or a span leaves: the stages then hold columns as six stages that close
        # their bubbles would, and the FIFO never holds more than SLOTS (stages 5 and 6 are full
        # whenever it holds more than one).
        slot_layout = data.StructLayout({"start": self.ptr_width, "end": self.ptr_width,
                                         **value_field(self.value_width)})
        m.submodules.ordered = ordered = RegisterFIFO(width=slot_layout.size, depth=self.SLOTS)
        head = data.View(slot_layout, ordered.r_data)
        in_flight = Signal(range(self.LATENCY + 1))
        room = Signal(init=1)               # in_flight < LATENCY, a register: the ready is one LUT
        take = self.spans.valid & self.spans.ready
        accept = self.cols.valid & self.cols.ready
        m.d.comb += self.cols.ready.eq(room | take)

        # Stage 1: the accepted column.
        # Whether the column is out of range is registered with it, so the count's update is
        # flip-flops and a small adder, not a comparison with ``n_cols`` (a layer register that
        # yosys shares between an array's PEs).
        s1_valid = Signal()
        col = Signal(self.col_width)
        out_of_range = Signal()
        drop = s1_valid & out_of_range
        new_col = self.cols.payload.col
        # The count's next value for no span taken and for one (the column is then accepted if
        # offered), from registers; the take (the sparse-matrix read's ready) selects last. Kept
        # wires, so that synthesis does not fold the take back into the adder.
        held, freed = (Signal.like(in_flight, name=n, attrs={"keep": 1}) for n in ("held", "freed"))
        held_room, freed_room = (Signal(name=n, attrs={"keep": 1}) for n in ("held_room", "freed_room"))
        m.d.comb += [held.eq(in_flight + (self.cols.valid & room) - drop),
                     freed.eq(in_flight + self.cols.valid - 1 - drop),
                     held_room.eq(held < self.LATENCY), freed_room.eq(freed < self.LATENCY)]
        m.d.sync += [s1_valid.eq(accept), col.eq(new_col),
                     out_of_range.eq((new_col >= self.n_cols) | (new_col >= self.max_cols)),
                     in_flight.eq(Mux(take, freed, held)), room.eq(Mux(take, freed_room, held_room))]

        # Stage 2: the banks' read registers; a column out of range is dropped here.
        # Stage 3: the banks' output registers.
        s_valid = [Signal(name=f"s{k}_valid") for k in (2, 3)]
        s_odd = [Signal(name=f"s{k}_odd") for k in (2, 3)]
        m.d.comb += [
            even.read.addr.eq((col + 1) >> 1),
            odd.read.addr.eq(col >> 1),
            even.read.en.eq(1),
            odd.read.en.eq(1),
            even.read.out_en.eq(1),
            odd.read.out_en.eq(1),
        ]
        m.d.sync += [s_valid[0].eq(s1_valid & ~out_of_range), s_odd[0].eq(col[0]),
                     s_valid[1].eq(s_valid[0]), s_odd[1].eq(s_odd[0])]

        # Stage 4: the column's two pointers, in order, into the FIFO (the block RAMs' outputs reach
        # flip-flops through one 2:1 select).
        slot = Signal(slot_layout)
        m.d.comb += [slot.start.eq(Mux(s_odd[1], odd.read.data, even.read.data)),
                     slot.end.eq(Mux(s_odd[1], even.read.data, odd.read.data)),
                     ordered.w_data.eq(slot), ordered.w_en.eq(s_valid[1])]

        # Stage 5: their difference (signed: a corrupt image with start > end gives a negative
        # count, which reads as empty).
        adv6 = ~self.spans.valid | self.spans.ready
        s5_valid = Signal()
        adv5 = ~s5_valid | adv6
        s5_start = Signal(self.ptr_width)
        s5_end = Signal(self.ptr_width)
        s5_count = Signal(signed(self.ptr_width + 1))
        m.d.comb += ordered.r_en.eq(adv5)
        with m.If(adv5):
            m.d.sync += [s5_valid.eq(ordered.r_rdy), s5_start.eq(head.start), s5_end.eq(head.end),
                         s5_count.eq(head.end - head.start)]

        # Stage 6: the span, with its count decoded into ``empty`` and ``single``.
        span = self.spans.payload
        with m.If(adv6):
            m.d.sync += [
                self.spans.valid.eq(s5_valid),
                span.start.eq(s5_start),
                span.end.eq(s5_end),
                span.empty.eq(s5_count <= 0),
                span.single.eq(s5_count == 1),
            ]
        if self.value_width:
            values = [Signal(signed(self.value_width), name=f"s{k}_value") for k in (1, 2, 3, 5)]
            m.d.sync += [values[0].eq(self.cols.payload.value), values[1].eq(values[0]), values[2].eq(values[1])]
            m.d.comb += slot.value.eq(values[2])
            with m.If(adv5):
                m.d.sync += values[3].eq(head.value)
            with m.If(adv6):
                m.d.sync += span.value.eq(values[3])
        m.d.comb += self.busy.eq(in_flight != 0)

        # Set as an out-of-range column leaves stage 1 (sticky).
        with m.If(self.error_clear):
            m.d.sync += self.error.eq(0)
        with m.If(drop):
            m.d.sync += self.error.eq(1)
        return m


def check_col_ptr(col_ptr, max_cols, max_entries):
    """The pointer init image as a list, after checking it (the memory reads 0 past its end)."""
    values = [] if col_ptr is None else [int(v) for v in col_ptr]
    if len(values) > max_cols + 1:
        raise ValueError(f"col_ptr has {len(values)} pointers; max_cols = {max_cols} allows "
                         f"{max_cols + 1}")
    for i, v in enumerate(values):
        if not 0 <= v <= max_entries:
            raise ValueError(f"col_ptr[{i}] = {v} is outside 0..max_entries ({max_entries})")
        if i and v < values[i - 1]:
            raise ValueError(f"col_ptr is not non-decreasing at index {i}: {values[i - 1]} > {v}")
    if values and values[0] != 0:
        raise ValueError(f"col_ptr[0] must be 0, got {values[0]}")
    return values
