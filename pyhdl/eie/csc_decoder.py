from amaranth.hdl import Module
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from pyhdl.eie.address_accumulator import AddressAccumulator, decoded_layout
from pyhdl.eie.pointer_read import PointerRead, check_col_ptr, column_layout
from pyhdl.eie.spmat_read import SparseMatrixRead, check_entries
from pyhdl.params import bits_for, check_int, module_name
from sw.formats import ENTRY_WIDTH


class CSCDecoder(wiring.Component):
    """The front half of the EIE PE: column index in, decoded sparse entries out.

    ``PointerRead`` → ``SparseMatrixRead`` → ``AddressAccumulator``. For every accepted column
    it emits one ``(local_row, weight_idx, last)`` per stored entry of that column, padding
    entries included (``weight_idx`` 0), in memory order.

    Parameters
    ----------
    max_cols, max_entries, max_local_rows : int
        Sizes of the pointer memory (``max_cols + 1`` pointers), the sparse-matrix memory
        (8-bit entries) and the destination row space.
    value_width : int
        Bits of a signed value that travels from each column to every entry it produces (the PE
        carries the activation value this way); 0 for none.
    col_ptr, entries : sequence of int, optional
        Initial memory images (pointers; 8-bit entry words). Both memories can also be written
        through ``ptr_load`` / ``spmat_load``, while the decoder is idle: their block RAMs have
        no read-during-write bypass (``BlockRAM(bypass=False)``), so on ECP5 a word read in the
        cycle it is written, or the next, is undefined.

    Attributes
    ----------
    cols : In(stream of column_layout)
    decoded : Out(stream of decoded_layout)
    n_cols : In(bits_for(max_cols))
        Loaded column count; a column ``>= n_cols`` is dropped and sets ``error``.
    error : Out(1)
        Sticky: out-of-range column or a decoded row ``>= max_local_rows``; ``error_clear``
        clears it.
    issued, skipped : Out(1)
        This cycle the sparse-matrix read issued an entry / consumed an empty column.
    busy : Out(1)
        A column or entry is in flight (a column is accepted only from a non-empty source, so
        ``busy`` low with nothing offered means the decoder is empty).

    Timing: the first entry of a column leaves ``LATENCY`` = 10 cycles after the column is
    accepted (pointer read 6, sparse-matrix read 2, address accumulator 2); sustained throughput
    is one entry per cycle across column boundaries while columns wait at the input; an empty
    column costs one cycle. Without back-pressure, columns with ``e_1 .. e_n`` entries take
    ``sum(max(e_i, 1)) + LATENCY`` cycles from the first column accepted to the last entry out.
    """

    LATENCY = PointerRead.LATENCY + SparseMatrixRead.LATENCY + AddressAccumulator.LATENCY

    def __init__(self, *, max_cols: int = 1024, max_entries: int = 4096, max_local_rows: int = 64,
                 value_width: int = 0, col_ptr=None, entries=None):
        self.max_cols = check_int("max_cols", max_cols)
        self.max_entries = check_int("max_entries", max_entries)
        self.max_local_rows = check_int("max_local_rows", max_local_rows)
        self.value_width = check_int("value_width", value_width, minimum=0)
        # Checked here so a bad image fails at construction, not at elaboration.
        self.col_ptr = check_col_ptr(col_ptr, max_cols, max_entries)
        self.entries = check_entries(entries, max_entries)
        self.col_width = bits_for(max_cols - 1)
        self.row_width = bits_for(max_local_rows - 1)
        self.name = module_name("csc_decoder", max_cols=max_cols, max_entries=max_entries,
                                max_local_rows=max_local_rows, **({"value_width": value_width} if value_width else {}))
        super().__init__({
            "cols": In(stream.Signature(column_layout(self.col_width, value_width))),
            "decoded": Out(stream.Signature(decoded_layout(self.row_width, value_width))),
            "busy": Out(1),
            "issued": Out(1),
            "skipped": Out(1),
            "n_cols": In(bits_for(max_cols)),
            "error": Out(1),
            "error_clear": In(1),
            "ptr_load": Out(memory.WritePort.Signature(addr_width=bits_for(max_cols), shape=bits_for(max_entries))),
            "spmat_load": Out(memory.WritePort.Signature(addr_width=bits_for(max_entries - 1), shape=ENTRY_WIDTH)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.pointer_read = ptr = PointerRead(
            max_cols=self.max_cols, max_entries=self.max_entries, value_width=self.value_width, col_ptr=self.col_ptr)
        m.submodules.spmat_read = spmat = SparseMatrixRead(
            max_entries=self.max_entries, value_width=self.value_width, entries=self.entries)
        m.submodules.address_accumulator = accum = AddressAccumulator(
            max_local_rows=self.max_local_rows, value_width=self.value_width)

        connect(m, wiring.flipped(self.cols), ptr.cols)
        connect(m, ptr.spans, spmat.spans)
        connect(m, spmat.entries, accum.entries)
        connect(m, accum.decoded, wiring.flipped(self.decoded))
        connect(m, wiring.flipped(self.ptr_load), ptr.load)
        connect(m, wiring.flipped(self.spmat_load), spmat.load)
        m.d.comb += [
            ptr.n_cols.eq(self.n_cols),
            ptr.error_clear.eq(self.error_clear),
            accum.error_clear.eq(self.error_clear),
            self.error.eq(ptr.error | accum.error),
            self.busy.eq(ptr.busy | spmat.busy | accum.busy),
            self.issued.eq(spmat.issued),
            self.skipped.eq(spmat.skipped),
        ]
        return m
