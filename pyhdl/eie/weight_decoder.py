from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.address_accumulator import decoded_layout
from pyhdl.params import check_int
from sw.formats import CODEBOOK_SIZE, INDEX_WIDTH


def weighted_entry_layout(row_width: int, weight_width: int, act_width: int) -> data.StructLayout:
    """An entry ready for the arithmetic unit: destination row, decoded weight, activation."""
    return data.StructLayout({
        "local_row": row_width,
        "weight": signed(weight_width),
        "value": signed(act_width),
        "last": 1,
    })


class WeightDecoder(wiring.Component):
    """Looks up the shared weight of each entry in a 16-entry codebook.

    The codebook is a register file of ``CODEBOOK_SIZE`` signed ``weight_width``-bit values;
    entry 0 is hard-wired to 0 (pruned weights and padding entries decode to it) and writes to
    it are ignored. One pipeline register: latency one cycle, throughput one entry per cycle.

    Attributes
    ----------
    entries : In(stream of decoded_layout)
    weighted : Out(stream of weighted_entry_layout)
    load : Out(memory.WritePort.Signature(addr_width=INDEX_WIDTH, shape=weight_width))
        Host write port: codebook entry ``addr``.
    """

    def __init__(self, *, row_width: int, act_width: int, weight_width: int, codebook=None):
        self.row_width = check_int("row_width", row_width)
        self.act_width = check_int("act_width", act_width, minimum=2)
        self.weight_width = check_int("weight_width", weight_width, minimum=2)
        self.codebook = check_codebook_init(codebook, weight_width)
        super().__init__({
            "entries": In(stream.Signature(decoded_layout(row_width, act_width))),
            "weighted": Out(stream.Signature(weighted_entry_layout(row_width, weight_width, act_width))),
            "load": Out(memory.WritePort.Signature(addr_width=INDEX_WIDTH, shape=weight_width)),
        })

    def elaborate(self, platform):
        m = Module()
        table = Array(Signal(signed(self.weight_width), name=f"codebook{i}", init=v)
                      for i, v in enumerate(self.codebook))
        for i in range(1, CODEBOOK_SIZE):
            with m.If(self.load.en & (self.load.addr == i)):
                m.d.sync += table[i].eq(self.load.data)

        advance = ~self.weighted.valid | self.weighted.ready
        m.d.comb += self.entries.ready.eq(advance)
        entry = self.entries.payload
        with m.If(advance):
            m.d.sync += [
                self.weighted.valid.eq(self.entries.valid),
                self.weighted.payload.local_row.eq(entry.local_row),
                self.weighted.payload.weight.eq(table[entry.weight_idx]),
                self.weighted.payload.value.eq(entry.value),
                self.weighted.payload.last.eq(entry.last),
            ]
        return m


def check_codebook_init(codebook, weight_width):
    lo, hi = -(1 << (weight_width - 1)), (1 << (weight_width - 1)) - 1
    values = [0] * CODEBOOK_SIZE if codebook is None else [int(v) for v in codebook]
    if len(values) > CODEBOOK_SIZE:
        raise ValueError(f"codebook has {len(values)} entries; at most {CODEBOOK_SIZE}")
    if values and values[0] != 0:
        raise ValueError(f"codebook entry 0 is fixed at 0, got {values[0]}")
    for i, v in enumerate(values):
        if not lo <= v <= hi:
            raise ValueError(f"codebook[{i}] = {v} does not fit a signed {weight_width}-bit weight")
    return values + [0] * (CODEBOOK_SIZE - len(values))
