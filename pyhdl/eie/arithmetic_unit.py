from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.weight_decoder import weighted_entry_layout
from pyhdl.params import bits_for, check_int
from pyhdl.primitives.multiplier import Multiplier


class ArithmeticUnit(wiring.Component):
    """Multiply-accumulate into the destination registers, with forwarding for same-row hits.

    An entry accepted in cycle ``t`` enters a ``Multiplier`` of ``MULT_LATENCY`` = 3 (input,
    pipeline and output registers: a fully registered DSP) while its row travels alongside. The
    destination row is read in cycle ``t + 2``; in cycle ``t + 3`` the product is added to it into
    the sum register, which writes the row in cycle ``t + 4`` (the adder's carry chain ends at a
    flip-flop, not at the LUT RAM's write port). That read cannot see the writes of the two
    entries ahead: the one just ahead writes a cycle later, the one two ahead at the end of the
    read's own cycle (the memory is not transparent). So when the entry one ahead added to the
    same row the sum register is taken instead, else when the entry two ahead did, its sum (the
    sum register a cycle later); entries further ahead have been written before the read. Both
    decisions are registered a cycle early. Always ready: one entry per cycle, no stall, whatever
    the row sequence; an entry's sum is in the registers at the end of cycle ``t + LATENCY``.

    Attributes
    ----------
    entries : In(stream of weighted_entry_layout), always ready
    acc_read, acc_write : In(memory.ReadPort.Signature), In(memory.WritePort.Signature)
        To the destination registers.
    acc_read_ahead : Out(row_width)
        The row ``acc_read`` reads two cycles later (``DestinationRegisters.acc_read_ahead``): the
        accepted entry's row.
    busy : Out(1)
        An accepted entry has not been written back yet.
    clear : In(1)
        Layer start (with the destination registers' clear): forget the bypass state.
    """

    MULT_LATENCY = 3
    LATENCY = MULT_LATENCY + 1      # acceptance -> write-back cycle

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
            "acc_read_ahead": Out(row_width),
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

        # The row and valid bit of the entry in each stage: index k holds the entry accepted
        # k + 1 cycles ago; ``add`` is the product's stage (the sum register loads), the last
        # the write-back.
        rows = [Signal(self.row_width, name=f"row{k + 1}") for k in range(self.LATENCY)]
        valid = [Signal(name=f"valid{k + 1}") for k in range(self.LATENCY)]
        m.d.sync += [rows[0].eq(entry.local_row), valid[0].eq(self.entries.valid)]
        for k in range(1, self.LATENCY):
            m.d.sync += [rows[k].eq(rows[k - 1]), valid[k].eq(valid[k - 1])]
        add = self.MULT_LATENCY - 1
        m.d.comb += [self.acc_read.addr.eq(rows[add - 1]), self.acc_read.en.eq(valid[add - 1]),
                     self.acc_read_ahead.eq(rows[add - 3] if add >= 3 else entry.local_row)]   # rows shift every cycle

        # Add the product to the row, forwarding the sums not yet written; write the sum back.
        last_sum = Signal(signed(self.acc_width))       # the sum register: written back this cycle
        prev_sum = Signal(signed(self.acc_width))       # the sum written back last cycle
        forward = Signal(name="bypass")                 # the row's sum is in last_sum
        forward2 = Signal(name="bypass2")               # ... else in prev_sum
        m.d.comb += [
            self.acc_write.addr.eq(rows[-1]),
            self.acc_write.data.eq(last_sum),
            self.acc_write.en.eq(valid[-1]),
            self.busy.eq(Cat(valid).any()),
        ]
        reader_row, reader_valid = rows[add - 1], valid[add - 1] & ~self.clear
        m.d.sync += [
            last_sum.eq(Mux(forward, last_sum, Mux(forward2, prev_sum, self.acc_read.data)) + mul.p),
            prev_sum.eq(last_sum),
            # Next cycle's entry read its row in this cycle, before the writes of the two ahead.
            forward.eq(reader_valid & valid[add] & (rows[add] == reader_row)),
            forward2.eq(reader_valid & valid[add + 1] & (rows[add + 1] == reader_row)),
        ]
        return m
