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
    destination row is read in cycle ``t + 1``; in ``t + 2`` the addend is chosen into the
    ``base`` register, and in ``t + 3`` the product is added to ``base`` (or to the sum register)
    into the sum register, which writes the row in ``t + 4`` (the adder's carry chain ends at a
    flip-flop, not at the LUT RAM's write port). The read cannot see the writes of the three
    entries ahead: the one two ahead has its sum in the sum register in ``t + 2``, the one three
    ahead in the register behind it (it writes in ``t + 1``, the read's own cycle, and the memory
    is not transparent); ``base`` takes that sum when that entry added to the same row (the
    nearer first), else the row as read. The entry just ahead adds in ``t + 2``, so its sum is
    taken from the sum register in ``t + 3``: the adder's loop is one 2:1 select in front of the
    carry chain, its select and both inputs flip-flops. Every decision is registered a cycle
    early. Always ready: one entry per cycle, no stall, whatever the row sequence; an entry's sum
    is in the registers at the end of cycle ``t + LATENCY``.

    Attributes
    ----------
    entries : In(stream of weighted_entry_layout), always ready
    acc_read, acc_write : In(memory.ReadPort.Signature), In(memory.WritePort.Signature)
        To the destination registers.
    acc_read_ahead : Out(row_width)
        The row ``acc_read`` reads the cycle after (``DestinationRegisters.acc_read_ahead``): the
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
        # k + 1 cycles ago; the product is added in stage MULT_LATENCY - 1, the last writes back.
        rows = [Signal(self.row_width, name=f"row{k + 1}") for k in range(self.LATENCY)]
        valid = [Signal(name=f"valid{k + 1}") for k in range(self.LATENCY)]
        m.d.sync += [rows[0].eq(entry.local_row), valid[0].eq(self.entries.valid)]
        for k in range(1, self.LATENCY):
            m.d.sync += [rows[k].eq(rows[k - 1]), valid[k].eq(valid[k - 1])]
        # The read address is a register of its own: it fans out to every LUT RAM cell.
        read_row = Signal(self.row_width, name="read_row")
        m.d.sync += read_row.eq(entry.local_row)
        m.d.comb += [self.acc_read.addr.eq(read_row), self.acc_read.en.eq(valid[0]),
                     self.acc_read_ahead.eq(entry.local_row)]

        # Choose the addend a cycle ahead (base), add the product to it or to the sum just made.
        last_sum = Signal(signed(self.acc_width))       # the sum register: written back this cycle
        prev_sum = Signal(signed(self.acc_width))       # the sum written back last cycle
        base = Signal(signed(self.acc_width))           # the row read, or a sum it did not see
        forward = Signal(name="bypass")                 # add to last_sum, not base (one ahead)
        forward2 = Signal(name="bypass2")               # base takes last_sum (two ahead)
        forward3 = Signal(name="bypass3")               # ... else prev_sum (three ahead)
        m.d.comb += [
            self.acc_write.addr.eq(rows[-1]),
            self.acc_write.data.eq(last_sum),
            self.acc_write.en.eq(valid[-1]),
            self.busy.eq(Cat(valid).any()),
        ]
        # rows[k] holds the entry k ahead of rows[0]'s. The reader (rows[0]) loads base the cycle
        # after, and adds (as rows[1]) the cycle after that.
        reader, adder = valid[0] & ~self.clear, valid[1] & ~self.clear
        m.d.sync += [
            forward2.eq(reader & valid[2] & (rows[2] == rows[0])),
            forward3.eq(reader & valid[3] & (rows[3] == rows[0])),
            forward.eq(adder & valid[2] & (rows[2] == rows[1])),
            base.eq(Mux(forward2, last_sum, Mux(forward3, prev_sum, self.acc_read.data))),
            last_sum.eq(Mux(forward, last_sum, base) + mul.p),
            prev_sum.eq(last_sum),
        ]
        return m
