from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.pointer_read import value_field
from pyhdl.eie.spmat_read import entry_layout
from pyhdl.params import bits_for, check_int
from sw.formats import INDEX_WIDTH, MAX_REL_INDEX


def decoded_layout(row_width: int, value_width: int = 0) -> data.StructLayout:
    """A decoded entry: destination local row, codebook index, last entry of its column, value."""
    return data.StructLayout({"local_row": row_width, "weight_idx": INDEX_WIDTH, "last": 1, **value_field(value_width)})


class AddressAccumulator(wiring.Component):
    """Turns relative indices into local row numbers (docs/spec.md §2, Case A / Case B).

    Case A, first entry of a column: ``row = rel_index``. Case B, every later entry:
    ``row = previous_row + 1 + rel_index``. Padding entries pass through like any other entry
    (``weight_idx`` 0), so the rows after them come out right.

    Attributes
    ----------
    entries : In(stream of entry_layout)
    decoded : Out(stream of decoded_layout)
        ``LATENCY`` cycles after the entry is accepted.
    busy : Out(1)
        An entry is in either stage.
    error : Out(1)
        Sticky: set when a row reaches ``max_local_rows`` (a corrupt image), visible from the
        cycle after the entry appears on ``decoded`` (the range check reads the registered row);
        cleared by ``error_clear``. The entry is still passed on, with its row truncated.

    Two stages, advancing together on ``~decoded.valid | decoded.ready``: the entry registered
    as it comes (the sparse-matrix memory's output reaches the fabric in a cycle of its own),
    then the row. Throughput one entry per cycle; latency ``LATENCY`` = 2 cycles.
    """

    LATENCY = 2

    def __init__(self, *, max_local_rows: int, value_width: int = 0):
        self.max_local_rows = check_int("max_local_rows", max_local_rows)
        self.value_width = check_int("value_width", value_width, minimum=0)
        self.row_width = bits_for(max_local_rows - 1)
        super().__init__({
            "entries": In(stream.Signature(entry_layout(value_width))),
            "decoded": Out(stream.Signature(decoded_layout(self.row_width, value_width))),
            "busy": Out(1),
            "error": Out(1),
            "error_clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        advance = ~self.decoded.valid | self.decoded.ready
        m.d.comb += self.entries.ready.eq(advance)
        entry = Signal.like(self.entries.payload, name="entry")
        entry_valid = Signal()
        with m.If(advance):
            m.d.sync += [entry.eq(self.entries.payload), entry_valid.eq(self.entries.valid)]
        # Wide enough that previous_row + 1 + 15 never wraps before the range check. `last_row`
        # holds the last accepted row at full width: its low bits are the output and the next
        # entry's previous row, and the range check reads it a cycle later (`fresh`), off the
        # path from the sparse-matrix memory through the adder.
        row = Signal(bits_for(self.max_local_rows + MAX_REL_INDEX))
        last_row = Signal.like(row)
        fresh = Signal()
        prev_row = last_row[:self.row_width]
        m.d.comb += [row.eq(Mux(entry.first, entry.rel_index, prev_row + 1 + entry.rel_index)),
                     self.decoded.payload.local_row.eq(prev_row)]

        accept = entry_valid & advance
        m.d.comb += self.busy.eq(entry_valid | self.decoded.valid)
        with m.If(advance):
            m.d.sync += self.decoded.valid.eq(entry_valid)
        with m.If(accept):
            m.d.sync += [
                last_row.eq(row),
                self.decoded.payload.weight_idx.eq(entry.weight_idx),
                self.decoded.payload.last.eq(entry.last),
            ]
            if self.value_width:
                m.d.sync += self.decoded.payload.value.eq(entry.value)

        m.d.sync += fresh.eq(accept)
        with m.If(self.error_clear):
            m.d.sync += self.error.eq(0)
        with m.If(fresh & (last_row >= self.max_local_rows)):
            m.d.sync += self.error.eq(1)
        return m
