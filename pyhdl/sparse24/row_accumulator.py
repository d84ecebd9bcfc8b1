from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int
from sw.formats import ACC24_WIDTH, INT8_MIN, INT8_WIDTH

# An int8 × int8 product; the largest magnitude is -128 × -128 = 2**14.
PRODUCT_WIDTH = 2 * INT8_WIDTH
MAX_PRODUCT = INT8_MIN * INT8_MIN


def products_layout(n: int) -> data.StructLayout:
    """One beat of products: ``n`` signed products and whether the beat ends its row."""
    return data.StructLayout({"products": data.ArrayLayout(signed(PRODUCT_WIDTH), n), "last": 1})


def adder_tree(terms: list):
    """A balanced tree of two-input adders over ``terms`` (Amaranth widens each level)."""
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2:]
    return terms[0]


class RowAccumulator(wiring.Component):
    """Sums each beat's products and accumulates beats into one int32 result per row.

    Two register stages: the adder tree's sum of a beat, then the accumulator. The beat marked
    ``last`` completes a row: ``acc + sum`` goes to ``results`` and the accumulator restarts at 0
    in the same cycle, so rows follow each other with no bubble. The accumulator is
    ``ACC24_WIDTH`` (32) bits, two's complement: a row wraps modulo 2**32 (no int8 row of
    K <= 262140 weights can reach it).

    Attributes
    ----------
    products : In(stream of products_layout(n))
    results : Out(stream of signed(32))
        One per row, leaving ``LATENCY`` = 2 cycles after the row's last beat is accepted.

    Throughput one beat per cycle. A stalled ``results`` holds the whole pipeline.
    """

    LATENCY = 2

    def __init__(self, *, n: int):
        self.n = check_int("n", n)
        self.sum_width = (n * MAX_PRODUCT).bit_length() + 1     # signed: holds n × 2**14
        super().__init__({
            "products": In(stream.Signature(products_layout(n))),
            "results": Out(stream.Signature(signed(ACC24_WIDTH))),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.products.payload

        sum_valid = Signal()
        beat_sum = Signal(signed(self.sum_width))
        sum_last = Signal()
        acc = Signal(signed(ACC24_WIDTH))

        out_free = ~self.results.valid | self.results.ready
        sum_free = ~sum_valid | out_free
        m.d.comb += self.products.ready.eq(sum_free)

        with m.If(sum_free):
            m.d.sync += sum_valid.eq(self.products.valid)
            with m.If(self.products.valid):
                m.d.sync += [
                    beat_sum.eq(adder_tree([beat.products[i] for i in range(self.n)])),
                    sum_last.eq(beat.last),
                ]

        total = Signal(signed(ACC24_WIDTH))
        m.d.comb += total.eq(acc + beat_sum)
        with m.If(out_free):
            m.d.sync += self.results.valid.eq(sum_valid & sum_last)
            with m.If(sum_valid):
                m.d.sync += acc.eq(Mux(sum_last, 0, total))
                with m.If(sum_last):
                    m.d.sync += self.results.payload.eq(total)
        return m
