from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.pointer_read import span_layout, value_field
from pyhdl.params import bits_for, check_int
from pyhdl.primitives.block_ram import BlockRAM
from sw.formats import ENTRY_WIDTH, INDEX_WIDTH, REL_INDEX_WIDTH


def entry_layout(value_width: int = 0) -> data.StructLayout:
    """A stored entry as read from the sparse-matrix memory, with its column boundaries and value."""
    return data.StructLayout({
        "rel_index": REL_INDEX_WIDTH,   # bits 3..0 of the stored word
        "weight_idx": INDEX_WIDTH,      # bits 7..4
        "first": 1,                     # first entry of its column
        "last": 1,                      # last entry of its column
        **value_field(value_width),
    })


class SparseMatrixRead(wiring.Component):
    """Walks each column span through the sparse-matrix memory, one entry per cycle.

    The memory holds ``max_entries`` 8-bit words (docs/spec.md §2: ``weight_idx`` in bits 7..4,
    ``rel_index`` in bits 3..0) in a ``BlockRAM``: a read register and an output register. A span
    ``(start, end)`` produces the entries ``start .. end - 1`` in order, marked ``first``/``last``.
    The next span is taken in the cycle after the current column's last entry is issued and its
    first entry is read in that same cycle, so consecutive columns stream with no bubble; an empty
    span is consumed in one cycle and produces nothing. The issue loop compares only a count of the
    entries left (``left == 1``), never an address.

    Attributes
    ----------
    spans : In(stream of span_layout)
    entries : Out(stream of entry_layout)
        Valid ``LATENCY`` = 2 cycles after the read is issued; the read register and the output
        register each advance when the stage after them is empty or advancing.
    load : Out(memory.WritePort.Signature)
        Host write port: the word ``data`` at ``addr``.
    busy : Out(1)
        A column is being walked or an entry is in the read pipeline.
    issued, skipped : Out(1)
        This cycle an entry's read was issued / an empty span was consumed (for counters).

    Throughput one entry per cycle.
    """

    LATENCY = 2

    def __init__(self, *, max_entries: int, value_width: int = 0, entries=None):
        self.max_entries = check_int("max_entries", max_entries)
        self.value_width = check_int("value_width", value_width, minimum=0)
        self.ptr_width = bits_for(max_entries)
        self.addr_width = bits_for(max_entries - 1)
        self.init = check_entries(entries, max_entries)
        super().__init__({
            "spans": In(stream.Signature(span_layout(self.ptr_width, value_width))),
            "entries": Out(stream.Signature(entry_layout(value_width))),
            "busy": Out(1),
            "issued": Out(1),
            "skipped": Out(1),
            "load": Out(memory.WritePort.Signature(addr_width=self.addr_width, shape=ENTRY_WIDTH)),
        })

    def elaborate(self, platform):
        m = Module()
        # The host loads the memory while no span is walked (no read-during-write bypass).
        m.submodules.mem = mem = BlockRAM(shape=ENTRY_WIDTH, depth=self.max_entries, init=self.init, bypass=False)
        m.d.comb += [
            mem.write.addr.eq(self.load.addr),
            mem.write.data.eq(self.load.data),
            mem.write.en.eq(self.load.en),
        ]

        active = Signal()                    # a column with entries left to issue
        ptr = Signal(self.ptr_width)         # next entry of the active column
        left = Signal(self.ptr_width)        # entries of the active column not yet issued

        span = self.spans.payload
        s1_valid = Signal()
        adv2 = ~self.entries.valid | self.entries.ready
        adv1 = ~s1_valid | adv2
        # Idle: the waiting span's first entry is issued straight from the input.
        issue = adv1 & (active | (self.spans.valid & ~span.empty))
        is_last = Mux(active, left == 1, span.single)
        m.d.comb += self.spans.ready.eq(adv1 & ~active)

        m.d.comb += [
            mem.read.addr.eq(Mux(active, ptr, span.start)),
            mem.read.en.eq(adv1),
            mem.read.out_en.eq(adv2),
        ]
        with m.If(issue):
            with m.If(active):
                m.d.sync += [ptr.eq(ptr + 1), left.eq(left - 1)]
            with m.Else():
                m.d.sync += [ptr.eq(span.start + 1), left.eq(span.end - span.start - 1)]
            m.d.sync += active.eq(~is_last)

        first = [Signal(name=f"s{k}_first") for k in (1, 2)]
        last = [Signal(name=f"s{k}_last") for k in (1, 2)]
        with m.If(adv1):
            m.d.sync += [s1_valid.eq(issue), first[0].eq(~active), last[0].eq(is_last)]
        with m.If(adv2):
            m.d.sync += [self.entries.valid.eq(s1_valid), first[1].eq(first[0]), last[1].eq(last[0])]
        if self.value_width:
            # The value of the span being walked: taken with the span, issued with each entry.
            col_value = Signal(signed(self.value_width))
            s1_value = Signal(signed(self.value_width))
            with m.If(self.spans.valid & self.spans.ready):
                m.d.sync += col_value.eq(span.value)
            with m.If(adv1):
                m.d.sync += s1_value.eq(Mux(active, col_value, span.value))
            with m.If(adv2):
                m.d.sync += self.entries.payload.value.eq(s1_value)
        m.d.comb += [
            self.busy.eq(active | s1_valid | self.entries.valid),
            self.issued.eq(issue),
            self.skipped.eq(self.spans.valid & self.spans.ready & span.empty),
        ]

        word = data.View(data.StructLayout({"rel_index": REL_INDEX_WIDTH, "weight_idx": INDEX_WIDTH}),
                         mem.read.data)
        m.d.comb += [
            self.entries.payload.rel_index.eq(word.rel_index),
            self.entries.payload.weight_idx.eq(word.weight_idx),
            self.entries.payload.first.eq(first[1]),
            self.entries.payload.last.eq(last[1]),
        ]
        return m


def check_entries(entries, max_entries):
    values = [] if entries is None else [int(v) for v in entries]
    if len(values) > max_entries:
        raise ValueError(f"the sparse-matrix image has {len(values)} entries; max_entries = {max_entries}")
    for i, v in enumerate(values):
        if not 0 <= v < (1 << ENTRY_WIDTH):
            raise ValueError(f"sparse-matrix entry {i} = {v} is not an {ENTRY_WIDTH}-bit word")
    return values
