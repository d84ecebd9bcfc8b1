from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.sparse24.row_accumulator import MULTIPLIER_LATENCY, RowAccumulator, multiply_into
from sw.formats import ACC24_WIDTH, INT8_WIDTH, KEPT_24, MAC24_GROUPS


def dense_beat_layout(multipliers: int) -> data.StructLayout:
    """One cycle's input: ``multipliers`` consecutive int8 weights of a row, the activations they
    meet and whether this beat ends the row (element ``j`` at bits ``8j .. 8j + 7``)."""
    return data.StructLayout({
        "weights": data.ArrayLayout(signed(INT8_WIDTH), multipliers),
        "acts": data.ArrayLayout(signed(INT8_WIDTH), multipliers),
        "last": 1,
    })


class DenseMAC(wiring.Component):
    """Dense int8 multiply-accumulate, the baseline for :class:`SparseMAC`.

    ``multipliers`` multipliers form ``weights[j]·acts[j]`` for one beat of a row each cycle; the
    same :class:`RowAccumulator` as the sparse MAC sums and accumulates them into one int32 per
    row. With the default ``multipliers = 2·MAC24_GROUPS`` (8) it has the sparse MAC's multiplier
    count, so it takes ``K / multipliers`` cycles a row where the sparse MAC takes ``K / (4·groups)``.

    Parameters
    ----------
    multipliers : int
        Weights (and multipliers) per beat; default 8.

    Attributes
    ----------
    beats : In(stream of dense_beat_layout(multipliers))
    results : Out(stream of signed(32))
        One int32 per row, in row order.

    Timing: initiation interval 1; a row's result leaves ``LATENCY`` = 5 cycles after its last
    beat is accepted (when ``results.ready`` is high: two multiplier stages, two adder-tree
    stages, the accumulator; docs/pipelines.md); without back-pressure ``rows`` rows take
    ``rows · K / multipliers + 5`` cycles. A result held by ``results.ready`` low stalls the pipeline.
    """

    LATENCY = MULTIPLIER_LATENCY + RowAccumulator.LATENCY

    def __init__(self, *, multipliers: int = KEPT_24 * MAC24_GROUPS):
        self.multipliers = check_int("multipliers", multipliers)
        self.name = module_name("dense_mac", multipliers=multipliers)
        self._acc = RowAccumulator(n=multipliers)
        super().__init__({
            "beats": In(stream.Signature(dense_beat_layout(multipliers))),
            "results": Out(stream.Signature(signed(ACC24_WIDTH))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.row_accumulator = acc = self._acc
        wiring.connect(m, acc.results, wiring.flipped(self.results))
        beat = self.beats.payload
        multiply_into(m, acc, self.beats, [(beat.weights[j], beat.acts[j]) for j in range(self.multipliers)])
        return m
