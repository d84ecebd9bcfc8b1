from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int


def output_layout(row_width: int, act_width: int) -> data.StructLayout:
    return data.StructLayout({"local_row": row_width, "value": signed(act_width)})


class OutputStage(wiring.Component):
    """Reads accumulators out: ``y = clamp(acc >> shift, -2**(w-1), 2**(w-1) - 1)``, then ReLU.

    docs/spec.md §1's output stage with an arithmetic (floor) shift of 0..15 and saturation to the
    ``act_width``-bit activation range, in three register stages: the destination registers' read,
    the shifted accumulator, the clamped (and rectified) output. A row accepted in cycle ``c`` is
    on ``outputs`` from ``c + LATENCY``; one row per cycle. All three stages advance together, on
    ``~outputs.valid | outputs.ready``, so back-pressure holds every row in flight.

    A row whose valid bit is clear reads as 0. The bit is selected over the first two stages (the
    8-bit group of ``row_valid`` holding it beside the read, then the bit) and zeroes the output
    in the third, so no 64:1 select follows the row address that also drives the memory.

    Attributes
    ----------
    rows : In(stream of unsigned(row_width))
        Local rows to read out.
    outputs : Out(stream of {local_row, value})
    out_read : In(memory.ReadPort.Signature) to the destination registers
    row_valid : In(max_local_rows)
        The destination registers' valid bits.
    shift : In(range(16)), relu : In(1)
        Layer settings; hold them steady while reading.
    """

    LATENCY = 3
    GROUP_BITS = 3          # row_valid is selected 8 bits, then 1 bit

    def __init__(self, *, max_local_rows: int, acc_width: int, act_width: int):
        self.max_local_rows = check_int("max_local_rows", max_local_rows)
        self.acc_width = check_int("acc_width", acc_width, minimum=act_width)
        self.act_width = check_int("act_width", act_width, minimum=2)
        self.row_width = bits_for(max_local_rows - 1)
        super().__init__({
            "rows": In(stream.Signature(self.row_width)),
            "outputs": Out(stream.Signature(output_layout(self.row_width, act_width))),
            "out_read": In(memory.ReadPort.Signature(addr_width=self.row_width, shape=signed(acc_width))),
            "row_valid": In(self.max_local_rows),
            "shift": In(4),
            "relu": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        advance = ~self.outputs.valid | self.outputs.ready
        m.d.comb += [
            self.rows.ready.eq(advance),
            self.out_read.addr.eq(self.rows.payload),
            self.out_read.en.eq(advance),
        ]
        # Stage 1 is the destination registers' read register; stage 2 the shifted accumulator.
        valid = [Signal(name=f"s{k}_valid") for k in (1, 2)]
        rows = [Signal(self.row_width, name=f"s{k}_row") for k in (1, 2)]
        shifted = Signal(signed(self.acc_width))
        hi = (1 << (self.act_width - 1)) - 1
        lo = -(1 << (self.act_width - 1))
        clamped = Signal(signed(self.act_width))
        # Saturation from the bits above the activation's sign: a LUT tree over them, not a
        # comparator's carry chain across the accumulator's width.
        sign, upper = shifted[-1], shifted[self.act_width - 1:-1]
        m.d.comb += clamped.eq(Mux(~sign & upper.any(), hi, Mux(sign & ~upper.all(), lo, shifted[:self.act_width])))
        # The row's valid bit: its group of GROUP bits in stage 1, the bit in stage 2.
        group_bits = min(self.GROUP_BITS, self.row_width)
        padded = Cat(self.row_valid, Const(0, (1 << self.row_width) - self.max_local_rows))
        group = Signal(1 << group_bits)
        row_written = Signal()
        with m.If(advance):
            m.d.sync += [
                valid[0].eq(self.rows.valid), rows[0].eq(self.rows.payload),
                group.eq(padded if group_bits == self.row_width
                         else padded.word_select(self.rows.payload[group_bits:], 1 << group_bits)),
                valid[1].eq(valid[0]), rows[1].eq(rows[0]), shifted.eq(self.out_read.data >> self.shift),
                row_written.eq(group.bit_select(rows[0][:group_bits], 1)),
                self.outputs.valid.eq(valid[1]), self.outputs.payload.local_row.eq(rows[1]),
                self.outputs.payload.value.eq(Mux(~row_written | (self.relu & sign), 0, clamped)),
            ]
        return m
