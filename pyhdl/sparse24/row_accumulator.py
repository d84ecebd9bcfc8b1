from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int
from pyhdl.primitives.multiplier import Multiplier
from sw.formats import ACC24_WIDTH, INT8_MIN, INT8_WIDTH

# An int8 × int8 product; the largest magnitude is -128 × -128 = 2**14.
PRODUCT_WIDTH = 2 * INT8_WIDTH
MAX_PRODUCT = INT8_MIN * INT8_MIN
# Register stages of each MAC multiplier: input and output, both inside the MULT18X18D on an
# ECP5. Its pipeline register would add a cycle and no speed: with input and output registers the
# critical path is the adder tree in the fabric either way (measured, docs/pipelines.md "2:4 MACs").
MULTIPLIER_LATENCY = 2


def products_layout(n: int) -> data.StructLayout:
    """One beat of products: ``n`` signed products and whether the beat ends its row."""
    return data.StructLayout({"products": data.ArrayLayout(signed(PRODUCT_WIDTH), n), "last": 1})


def multiply_into(m, acc, beats, operands) -> Value:
    """Feed ``acc.products`` from a beat stream through one :class:`Multiplier` per ``(a, b)``
    int8 operand pair of ``operands`` (expressions of ``beats.payload``).

    The multipliers' ``MULTIPLIER_LATENCY`` stages and a valid/last shift register beside them
    move together, on one enable: whenever the last stage is empty or ``acc.products`` takes it.
    So ``beats.ready`` is that enable, a beat is accepted every cycle without back-pressure, and
    a stalled accumulator holds every stage (the DSPs' ``CE``). Returns the accept condition
    (``beats.valid & beats.ready``)."""
    advance = Signal()
    m.d.comb += [advance.eq(~acc.products.valid | acc.products.ready), beats.ready.eq(advance)]
    valid = [Signal(name=f"stage{i}_valid") for i in range(MULTIPLIER_LATENCY)]
    last = [Signal(name=f"stage{i}_last") for i in range(MULTIPLIER_LATENCY)]
    with m.If(advance):
        m.d.sync += [valid[0].eq(beats.valid), last[0].eq(beats.payload.last)]
        m.d.sync += [v.eq(prev) for v, prev in zip(valid[1:], valid, strict=False)]
        m.d.sync += [x.eq(prev) for x, prev in zip(last[1:], last, strict=False)]
    m.d.comb += [acc.products.valid.eq(valid[-1]), acc.products.payload.last.eq(last[-1])]
    for j, (a, b) in enumerate(operands):
        m.submodules[f"multiplier{j}"] = mult = Multiplier(a_width=INT8_WIDTH, b_width=INT8_WIDTH,
                                                           latency=MULTIPLIER_LATENCY)
        m.d.comb += [mult.a.eq(a), mult.b.eq(b), mult.en.eq(advance), acc.products.payload.products[j].eq(mult.p)]
    return beats.valid & advance


def adder_tree(terms: list):
    """A balanced tree of two-input adders over ``terms`` (Amaranth widens each level)."""
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2:]
    return terms[0]


class RowAccumulator(wiring.Component):
    """Sums each beat's products and accumulates beats into one int32 result per row.

    Three register stages: the first level of the adder tree (products added in pairs), the rest
    of the tree (the beat's sum), then the accumulator; the tree is split so that no stage holds
    more than two adder levels (one carry chain each) at 200 MHz on an ECP5. The beat marked
    ``last`` completes a row: ``acc + sum`` goes to ``results`` and the accumulator restarts at 0
    in the same cycle, so rows follow each other with no bubble. The accumulator is
    ``ACC24_WIDTH`` (32) bits, two's complement: a row wraps modulo 2**32 (no int8 row of
    K <= 262140 weights can reach it).

    Attributes
    ----------
    products : In(stream of products_layout(n))
    results : Out(stream of signed(32))
        One per row, leaving ``LATENCY`` = 3 cycles after the row's last beat is accepted.

    Throughput one beat per cycle. A stalled ``results`` holds the whole pipeline; each stage
    takes a new beat whenever it is empty or the stage after it moves.
    """

    LATENCY = 3

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
        terms = [beat.products[i] for i in range(self.n)]
        pairs = [terms[i] + terms[i + 1] for i in range(0, self.n - 1, 2)] + terms[self.n - self.n % 2:]

        pair_valid = Signal()
        pair_sums = [Signal(signed(PRODUCT_WIDTH + 1), name=f"pair_sum{i}") for i in range(len(pairs))]
        pair_last = Signal()
        sum_valid = Signal()
        beat_sum = Signal(signed(self.sum_width))
        sum_last = Signal()
        acc = Signal(signed(ACC24_WIDTH))

        out_free = ~self.results.valid | self.results.ready
        sum_free = ~sum_valid | out_free
        pair_free = ~pair_valid | sum_free
        m.d.comb += self.products.ready.eq(pair_free)

        with m.If(pair_free):
            m.d.sync += pair_valid.eq(self.products.valid)
            with m.If(self.products.valid):
                m.d.sync += [ps.eq(p) for ps, p in zip(pair_sums, pairs, strict=True)]
                m.d.sync += pair_last.eq(beat.last)

        with m.If(sum_free):
            m.d.sync += sum_valid.eq(pair_valid)
            with m.If(pair_valid):
                m.d.sync += [beat_sum.eq(adder_tree(list(pair_sums))), sum_last.eq(pair_last)]

        total = Signal(signed(ACC24_WIDTH))
        m.d.comb += total.eq(acc + beat_sum)
        with m.If(out_free):
            m.d.sync += self.results.valid.eq(sum_valid & sum_last)
            with m.If(sum_valid):
                m.d.sync += acc.eq(Mux(sum_last, 0, total))
                with m.If(sum_last):
                    m.d.sync += self.results.payload.eq(total)
        return m
