from amaranth.hdl import Cat, Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.sparse24.row_accumulator import MULTIPLIER_LATENCY, RowAccumulator, multiply_into
from sw.formats import ACC24_WIDTH, GROUP_24, INT8_WIDTH, KEPT_24, MAC24_GROUPS, META_INDEX_WIDTH


def meta_layout() -> data.StructLayout:
    """One group's metadata, docs/spec.md §4's ``i0 | i1 << 2``: the kept positions, ``i0 < i1``."""
    return data.StructLayout({"i0": META_INDEX_WIDTH, "i1": META_INDEX_WIDTH})


def sparse_beat_layout(groups: int) -> data.StructLayout:
    """What the MAC takes in one cycle: ``groups`` consecutive groups of one weight row.

    ``values[2g]``, ``values[2g + 1]``: group ``g``'s kept int8 weights (docs/spec.md §4 order);
    ``meta[g]``: its kept positions; ``acts[4g .. 4g + 3]``: the 4 int8 activations group ``g``
    covers; ``last``: this beat ends the row. Element ``j`` of an array field sits at bits
    ``j·w .. j·w + w - 1`` of that field (``w`` its element width), as in the memory images of
    ``sw.pack.images24``.
    """
    return data.StructLayout({
        "values": data.ArrayLayout(signed(INT8_WIDTH), KEPT_24 * groups),
        "meta": data.ArrayLayout(meta_layout(), groups),
        "acts": data.ArrayLayout(signed(INT8_WIDTH), GROUP_24 * groups),
        "last": 1,
    })


class SparseMAC(wiring.Component):
    """2:4 sparse int8 multiply-accumulate: one row of ``y = W @ x`` per ``K / (4·groups)`` beats.

    Each cycle a beat brings ``groups`` groups of a 2:4-packed weight row (docs/spec.md §4) with the
    ``4·groups`` activations they cover. In every group two 4:1 multiplexers pick the activations
    at positions ``i0`` and ``i1``, and two multipliers form ``values[2g]·x[i0]`` and
    ``values[2g + 1]·x[i1]``: ``2·groups`` multipliers doing the work of ``4·groups`` dense MACs.
    An adder tree sums a beat's products and an int32 accumulator sums a row's beats
    (:class:`RowAccumulator`, wrapping modulo 2**32).

    Activations travel with the weights, so the MAC holds no vector and has no limit on ``K``:
    for ``y = W @ x`` the feeder replays ``x``'s ``K / (4·groups)`` words of ``32·groups`` bits for
    every row, for ``Y = W @ X`` it streams the matching column of ``X``.

    Parameters
    ----------
    groups : int
        Groups per beat (default ``sw.formats.MAC24_GROUPS`` = 4).

    Attributes
    ----------
    beats : In(stream of sparse_beat_layout(groups))
    results : Out(stream of signed(32))
        One int32 per row, in row order.
    error : Out(1)
        Sticky: an accepted beat had a group with ``i0 >= i1`` (not docs/spec.md §4 metadata; the beat is
        still computed as the multiplexers select). ``error_clear`` clears it.

    Timing: initiation interval 1 across beats and rows. A row's result leaves ``LATENCY`` = 5
    cycles after its last beat is accepted (with ``results.ready`` high): the multiplexers feed
    the multipliers' input registers, then their output registers (one MULT18X18D each on an
    ECP5), the two adder-tree stages and the accumulator (docs/pipelines.md). Without
    back-pressure ``rows`` rows take ``rows · K / (4·groups) + 5`` cycles from the first beat
    accepted to the last result taken. A result held by ``results.ready`` low stalls the whole
    pipeline (``beats.ready`` drops) until it is taken.
    """

    LATENCY = MULTIPLIER_LATENCY + RowAccumulator.LATENCY

    def __init__(self, *, groups: int = MAC24_GROUPS):
        self.groups = check_int("groups", groups)
        self.multipliers = KEPT_24 * groups
        self.name = module_name("sparse_mac", groups=groups)
        self._acc = RowAccumulator(n=self.multipliers)
        super().__init__({
            "beats": In(stream.Signature(sparse_beat_layout(groups))),
            "results": Out(stream.Signature(signed(ACC24_WIDTH))),
            "error": Out(1),
            "error_clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.row_accumulator = acc = self._acc
        wiring.connect(m, acc.results, wiring.flipped(self.results))

        beat = self.beats.payload
        operands = []
        for g in range(self.groups):
            group_acts = beat.acts[GROUP_24 * g: GROUP_24 * (g + 1)]
            for k, position in enumerate((beat.meta[g].i0, beat.meta[g].i1)):
                operands.append((beat.values[KEPT_24 * g + k], group_acts[position]))
        accept = multiply_into(m, acc, self.beats, operands)

        bad_meta = Cat(beat.meta[g].i0 >= beat.meta[g].i1 for g in range(self.groups)).any()
        with m.If(self.error_clear):
            m.d.sync += self.error.eq(0)
        with m.If(accept & bad_meta):
            m.d.sync += self.error.eq(1)
        return m
