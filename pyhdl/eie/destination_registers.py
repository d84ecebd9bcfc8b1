from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int


class DestinationRegisters(wiring.Component):
    """The PE's ``max_local_rows`` accumulators of ``acc_width`` bits.

    A memory with one write port and two synchronous read ports (accumulate, read-out; ``data``
    is valid the cycle after ``en``), plus a valid bit per row so ``clear`` empties every
    accumulator in one cycle: a write sets its row's bit. On the accumulate port a row whose bit
    is clear reads as 0. Reads are not transparent: a read of the row being written in the same
    cycle returns the old value (the arithmetic unit bypasses it).

    Attributes
    ----------
    acc_read : Out(memory.ReadPort.Signature(addr_width, shape=signed(acc_width)))
    out_read : Out(memory.ReadPort.Signature(addr_width, shape=signed(acc_width)))
        The stored word, whatever its valid bit: the reader looks the bit up in ``row_valid``
        (the output stage spreads that select over its stages).
    row_valid : Out(max_local_rows)
        The valid bits, from their register.
    acc_read_ahead : In(addr_width)
        The row ``acc_read`` reads the cycle after when its ``en`` is high then. Its valid bit is
        looked up in two steps of a register each: the row's group of 8 bits from this address
        (as the next cycle holds it: corrected for this cycle's write and ``clear``), then the
        bit from the group by the address a cycle later, held here, in the read's cycle. So each
        select is 8:1, and neither starts at the read address that also drives the memory's
        read ports.
    acc_write : Out(memory.WritePort.Signature(addr_width, shape=signed(acc_width)))
    clear : In(1)
        Every row reads as 0 from the next cycle on (a write in the same cycle still lands).
    """

    def __init__(self, *, max_local_rows: int, acc_width: int):
        self.max_local_rows = check_int("max_local_rows", max_local_rows)
        self.acc_width = check_int("acc_width", acc_width, minimum=2)
        aw = bits_for(max_local_rows - 1)
        super().__init__({
            "acc_read": Out(memory.ReadPort.Signature(addr_width=aw, shape=signed(acc_width))),
            "out_read": Out(memory.ReadPort.Signature(addr_width=aw, shape=signed(acc_width))),
            "acc_write": Out(memory.WritePort.Signature(addr_width=aw, shape=signed(acc_width))),
            "row_valid": Out(self.max_local_rows),
            "acc_read_ahead": In(aw),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=signed(self.acc_width), depth=self.max_local_rows, init=[])
        valid = Signal(self.max_local_rows)

        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(self.acc_write.addr), wp.data.eq(self.acc_write.data), wp.en.eq(self.acc_write.en)]
        written = Mux(self.acc_write.en, 1 << self.acc_write.addr, 0)
        m.d.sync += valid.eq(Mux(self.clear, 0, valid) | written)
        m.d.comb += self.row_valid.eq(valid)

        # The valid bit the accumulate port reads, looked up in two steps. Row r is read in
        # cycle t + 1 (it is `acc_read_ahead` in t): at the end of t its group is registered as
        # valid(t + 1) holds it, valid(t + 1) = (clear(t) ? 0 : valid(t)) | written(t); in t + 1,
        # beside the read (which sees neither that cycle's write nor its clear), its bit.
        aw, wa = len(self.acc_read_ahead), self.acc_write
        lo = min(3, aw)
        groups = -(-self.max_local_rows // (1 << lo))
        padded = Cat(valid, C(0, groups * (1 << lo) - self.max_local_rows))
        ahead_hi = self.acc_read_ahead[lo:]
        group = Signal(1 << lo)
        written_group = Mux(wa.en & (wa.addr[lo:] == ahead_hi), 1 << wa.addr[:lo], 0)
        m.d.sync += group.eq(Mux(self.clear, 0, padded.word_select(ahead_hi, 1 << lo) if aw > lo else padded)
                             | written_group)
        row = Signal(aw)                    # the row read: acc_read_ahead a cycle later
        m.d.sync += row.eq(self.acc_read_ahead)
        acc_valid = Signal()
        with m.If(self.acc_read.en):
            m.d.sync += acc_valid.eq(group.bit_select(row[:lo], 1))
        acc_rp, out_rp = mem.read_port(), mem.read_port()
        for port, rp in ((self.acc_read, acc_rp), (self.out_read, out_rp)):
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en)]
        m.d.comb += [self.acc_read.data.eq(Mux(acc_valid, acc_rp.data, 0)), self.out_read.data.eq(out_rp.data)]
        return m
