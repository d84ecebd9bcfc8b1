from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int


class DestinationRegisters(wiring.Component):
    """The PE's ``max_local_rows`` accumulators of ``acc_width`` bits.

    A memory with one write port and two synchronous read ports (accumulate, read-out; ``data``
    is valid the cycle after ``en``), plus a valid bit per row so ``clear`` empties every
    accumulator in one cycle: a row whose bit is clear reads as 0, and a write sets its bit.
    Reads are not transparent: a read of the row being written in the same cycle returns the old
    value (the arithmetic unit bypasses it).

    Attributes
    ----------
    acc_read, out_read : Out(memory.ReadPort.Signature(addr_width, shape=signed(acc_width)))
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

        for port in (self.acc_read, self.out_read):
            rp = mem.read_port()
            row_valid = Signal()
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en)]
            with m.If(port.en):
                m.d.sync += row_valid.eq(valid.bit_select(port.addr, 1))
            m.d.comb += port.data.eq(Mux(row_valid, rp.data, 0))
        return m
