from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int


def column_layout(col_width: int, value_width: int) -> data.StructLayout:
    """A column index and the value that travels with it (the PE's activation value)."""
    return data.StructLayout({"col": col_width, **value_field(value_width)})


def span_layout(ptr_width: int, value_width: int = 0) -> data.StructLayout:
    """A column's entries ``start .. end - 1`` in the sparse-matrix memory, and its value."""
    return data.StructLayout({"start": ptr_width, "end": ptr_width, **value_field(value_width)})


def value_field(value_width: int) -> dict:
    """The optional signed ``value`` field (a zero-width field would give Verilog an empty range)."""
    return {"value": signed(value_width)} if value_width else {}


class PointerRead(wiring.Component):
    """Looks up a column's start and end pointer in one cycle from even/odd pointer banks.

    ``col_ptr`` (``max_cols + 1`` pointers) is split by index parity: the even bank holds
    ``col_ptr[0], col_ptr[2], ...``, the odd bank ``col_ptr[1], col_ptr[3], ...``. Column ``j``
    needs ``col_ptr[j]`` and ``col_ptr[j + 1]``, which always sit in different banks, so one read
    of each bank (even address ``(j + 1) >> 1``, odd address ``j >> 1``) yields both.

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
        ``(start, end)`` of each accepted, in-range column; one cycle after it is accepted.
    n_cols : In(bits_for(max_cols))
        Number of loaded columns. A column ``>= n_cols`` is consumed, produces no span, and sets
        ``error``.
    error : Out(1)
        Sticky; cleared by ``error_clear``.
    load : Out(memory.WritePort.Signature)
        Host write port: ``col_ptr[addr] = data`` at the next clock edge.

    Throughput one column per cycle; latency one cycle (a synchronous SRAM read).
    """

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
            "load": Out(memory.WritePort.Signature(addr_width=bits_for(max_cols), shape=self.ptr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        n_ptr = self.max_cols + 1
        m.submodules.even = even = memory.Memory(
            shape=self.ptr_width, depth=(n_ptr + 1) // 2, init=self.init[0::2])
        m.submodules.odd = odd = memory.Memory(
            shape=self.ptr_width, depth=n_ptr // 2, init=self.init[1::2])

        # Host load: the pointer index's low bit picks the bank.
        for bank, parity in ((even, 0), (odd, 1)):
            wp = bank.write_port()
            m.d.comb += [
                wp.addr.eq(self.load.addr >> 1),
                wp.data.eq(self.load.data),
                wp.en.eq(self.load.en & (self.load.addr[0] == parity)),
            ]

        advance = ~self.spans.valid | self.spans.ready
        accept = self.cols.valid & advance
        col = self.cols.payload.col
        out_of_range = (col >= self.n_cols) | (col >= self.max_cols)
        m.d.comb += self.cols.ready.eq(advance)

        rd_even = even.read_port()
        rd_odd = odd.read_port()
        m.d.comb += [
            rd_even.addr.eq((col + 1) >> 1),
            rd_odd.addr.eq(col >> 1),
            rd_even.en.eq(accept),
            rd_odd.en.eq(accept),
        ]

        odd_col = Signal()
        with m.If(advance):
            m.d.sync += [
                self.spans.valid.eq(accept & ~out_of_range),
                odd_col.eq(col[0]),
            ]
            if self.value_width:
                m.d.sync += self.spans.payload.value.eq(self.cols.payload.value)
        m.d.comb += [
            self.spans.payload.start.eq(Mux(odd_col, rd_odd.data, rd_even.data)),
            self.spans.payload.end.eq(Mux(odd_col, rd_even.data, rd_odd.data)),
        ]

        with m.If(self.error_clear):
            m.d.sync += self.error.eq(0)
        with m.If(accept & out_of_range):
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
