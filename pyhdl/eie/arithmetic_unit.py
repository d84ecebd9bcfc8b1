from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.weight_decoder import weighted_entry_layout
from pyhdl.params import bits_for, check_int


class ArithmeticUnit(wiring.Component):
    """Multiply-accumulate into the destination registers, with a bypass for same-row hits.

    Stage 1 (the cycle an entry is accepted): ``weight * value`` is registered and the
    destination row is read. Stage 2 (next cycle): the registered product is added to the row's
    value and written back. The read in stage 1 cannot see the write of the entry one ahead
    (the memory is not transparent), so when that entry wrote the same row, the bypass takes its
    freshly computed sum instead of the stale read. Always ready: one entry per cycle, no stall,
    whatever the row sequence; an entry's sum is in the registers two cycles after acceptance.

    Attributes
    ----------
    entries : In(stream of weighted_entry_layout), always ready
    acc_read, acc_write : In(memory.ReadPort.Signature), In(memory.WritePort.Signature)
        To the destination registers.
    busy : Out(1)
        An accepted entry has not been written back yet.
    clear : In(1)
        Layer start (with the destination registers' clear): forget the bypass state.
    """

    def __init__(self, *, max_local_rows: int, acc_width: int, act_width: int, weight_width: int):
        self.max_local_rows = check_int("max_local_rows", max_local_rows)
        self.acc_width = check_int("acc_width", acc_width, minimum=act_width + weight_width)
        row_width = bits_for(max_local_rows - 1)
        self.row_width = row_width
        self.product_width = act_width + weight_width
        super().__init__({
            "entries": In(stream.Signature(weighted_entry_layout(row_width, weight_width, act_width))),
            "acc_read": In(memory.ReadPort.Signature(addr_width=row_width, shape=signed(acc_width))),
            "acc_write": In(memory.WritePort.Signature(addr_width=row_width, shape=signed(acc_width))),
            "busy": Out(1),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        entry = self.entries.payload
        accept = self.entries.valid
        m.d.comb += self.entries.ready.eq(1)

        # Stage 1: multiply; read the destination row.
        product = Signal(signed(self.product_width))
        row = Signal(self.row_width)
        valid = Signal()
        m.d.sync += [product.eq(entry.weight * entry.value), row.eq(entry.local_row), valid.eq(accept)]
        m.d.comb += [self.acc_read.addr.eq(entry.local_row), self.acc_read.en.eq(accept)]

        # Stage 2: accumulate and write back; bypass the stale read after a same-row write.
        last_row = Signal(self.row_width)
        last_sum = Signal(signed(self.acc_width))
        last_valid = Signal()
        bypass = last_valid & (last_row == row)
        total = Signal(signed(self.acc_width))
        m.d.comb += [
            total.eq(Mux(bypass, last_sum, self.acc_read.data) + product),
            self.acc_write.addr.eq(row),
            self.acc_write.data.eq(total),
            self.acc_write.en.eq(valid),
            self.busy.eq(valid),
        ]
        m.d.sync += [last_row.eq(row), last_sum.eq(total), last_valid.eq(valid & ~self.clear)]
        return m
