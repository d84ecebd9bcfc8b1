from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.weight_decoder import weighted_entry_layout
from pyhdl.params import bits_for, check_int
from pyhdl.primitives.multiplier import Multiplier


class ArithmeticUnit(wiring.Component):
    """Multiply-accumulate into the destination registers, with a bypass for same-row hits.

    An entry accepted in cycle ``t`` enters a ``Multiplier`` of ``MULT_LATENCY`` = 3 (input,
    pipeline and output registers: a fully registered DSP) while its row travels alongside. The
    destination row is read in cycle ``t + 2`` and in cycle ``t + 3`` the product is added to it
    and written back. That read cannot see the write of the entry one ahead, which lands at the
    end of the same cycle (the memory is not transparent), so when that entry wrote the same row
    the bypass takes its freshly computed sum instead; entries further ahead have been written
    before the read. The bypass decision is registered a cycle early, so the write-back cycle is
    one 2:1 select and the adder. Always ready: one entry per cycle, no stall, whatever the row
    sequence; an entry's sum is in the registers at the end of cycle ``t + LATENCY``.

    Attributes
    ----------
    entries : In(stream of weighted_entry_layout), always ready
    acc_read, acc_write : In(memory.ReadPort.Signature), In(memory.WritePort.Signature)
        To the destination registers.
    acc_read_next : Out(row_width)
        The row ``acc_read`` reads in the next cycle (``DestinationRegisters.acc_read_next``).
    busy : Out(1)
        An accepted entry has not been written back yet.
    clear : In(1)
        Layer start (with the destination registers' clear): forget the bypass state.
    """

    MULT_LATENCY = 3
    LATENCY = MULT_LATENCY      # acceptance -> write-back cycle

    def __init__(self, *, max_local_rows: int, acc_width: int, act_width: int, weight_width: int):
        self.max_local_rows = check_int("max_local_rows", max_local_rows)
        self.acc_width = check_int("acc_width", acc_width, minimum=act_width + weight_width)
        row_width = bits_for(max_local_rows - 1)
        self.row_width = row_width
        self.act_width, self.weight_width = act_width, weight_width
        super().__init__({
            "entries": In(stream.Signature(weighted_entry_layout(row_width, weight_width, act_width))),
            "acc_read": In(memory.ReadPort.Signature(addr_width=row_width, shape=signed(acc_width))),
            "acc_write": In(memory.WritePort.Signature(addr_width=row_width, shape=signed(acc_width))),
            "acc_read_next": Out(row_width),
            "busy": Out(1),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        entry = self.entries.payload
        m.d.comb += self.entries.ready.eq(1)

        m.submodules.multiplier = mul = Multiplier(a_width=self.weight_width, b_width=self.act_width,
                                                   latency=self.MULT_LATENCY)
        m.d.comb += [mul.a.eq(entry.weight), mul.b.eq(entry.value)]

        # The row and valid bit of the entry in each multiplier stage: index k holds the entry
        # accepted k + 1 cycles ago; the last is the write-back stage.
        rows = [Signal(self.row_width, name=f"row{k + 1}") for k in range(self.LATENCY)]
        valid = [Signal(name=f"valid{k + 1}") for k in range(self.LATENCY)]
        m.d.sync += [rows[0].eq(entry.local_row), valid[0].eq(self.entries.valid)]
        for k in range(1, self.LATENCY):
            m.d.sync += [rows[k].eq(rows[k - 1]), valid[k].eq(valid[k - 1])]
        row, wb_valid = rows[-1], valid[-1]
        m.d.comb += [self.acc_read.addr.eq(rows[-2]), self.acc_read.en.eq(valid[-2]),
                     self.acc_read_next.eq(rows[-3])]       # rows shift every cycle

        # Write-back: add the product to the row; bypass the stale read after a same-row write.
        last_sum = Signal(signed(self.acc_width))
        bypass = Signal()
        total = Signal(signed(self.acc_width))
        m.d.comb += [
            total.eq(Mux(bypass, last_sum, self.acc_read.data) + mul.p),
            self.acc_write.addr.eq(row),
            self.acc_write.data.eq(total),
            self.acc_write.en.eq(wb_valid),
            self.busy.eq(Cat(valid).any()),
        ]
        m.d.sync += [
            last_sum.eq(total),
            # Next cycle's entry read its row in this cycle, while this write was still pending.
            bypass.eq(wb_valid & valid[-2] & (row == rows[-2]) & ~self.clear),
        ]
        return m
