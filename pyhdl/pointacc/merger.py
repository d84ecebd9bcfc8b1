from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.bitonic_sorter import check_width, comb_network, lanes_to_ranks, ranks_to_lanes
from pyhdl.pointacc.network import merge_layers
from pyhdl.pointacc.streams import key_beat_layout, rank
from sw.pointcloud.keys import INDEX_BITS, KeyFormat


def head(beat):
    """Rank of a beat's first element; an empty beat ranks above every element (and ties with
    another empty beat, whatever its don't-care lanes hold)."""
    r = rank(beat.lanes[0], beat.keep[0])
    return Mux(beat.keep[0], r, (1 << len(r)) - 1)


class Merger(wiring.Component):
    """Merges two sorted key lists into one sorted list, ``width`` keys per cycle.

    The block merge of streaming merge sorters: a register holds ``width`` elements; each step
    takes the next beat of the input whose head (lane 0) ranks lower, merges it with the
    register (a half-cleaner against the reversed beat, then a bitonic merge of each half) and
    emits the lower ``width`` elements while the upper ``width`` stay. Every element still to
    come ranks at least as high as the emitted ones, so the output is sorted. The first step of
    a list only loads the register; after both inputs' ``last`` beats the register is flushed
    as the output's ``last`` beat (unless it is empty, then the final step's beat carries it).

    Parameters
    ----------
    width, key_bits, index_bits : int
        As :class:`BitonicSorter`.

    Attributes
    ----------
    a, b : In(stream of key_beat_layout)
        Sorted lists (see ``streams``: full beats, prefix ``keep``, ascending by ``(key, idx)``,
        a final beat with ``last``; an empty list is one beat with ``keep = 0``). Both must be
        fully consumed before the next pair of lists starts.
    merged : Out(stream of key_beat_layout)
        The sorted union; ties between the inputs go to ``a``.

    Throughput: one input beat per cycle. Merging lists of ``p`` and ``q`` beats takes
    ``p + q`` steps plus one flush cycle when the register still holds elements (always, for
    full beats) and emits ``p + q - 1`` (+1) beats; pairs of lists stream back to back without
    a gap. Latency: an output beat is registered one cycle after its step. ``a.ready`` and
    ``b.ready`` depend combinationally on both inputs' ``valid`` and head keys and on
    ``merged.ready`` (a merge must see both heads); ``merged.valid`` never depends on a ready.
    """

    def __init__(self, *, width: int = 8, key_bits: int = KeyFormat().key_bits, index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.key_bits = check_int("key_bits", key_bits)
        self.index_bits = check_int("index_bits", index_bits)
        self.name = module_name("merger", width=width, key_bits=key_bits, index_bits=index_bits)
        beat = key_beat_layout(width, key_bits, index_bits)
        super().__init__({
            "a": In(stream.Signature(beat)),
            "b": In(stream.Signature(beat)),
            "merged": Out(stream.Signature(beat)),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        elem = self.index_bits + self.key_bits + 1
        a, b, out = self.a, self.b, self.merged

        held = [Signal(elem, name=f"held{i}") for i in range(w)]   # sorted, rank form
        started = Signal()      # the first beat of this pair of lists is in `held`
        a_done = Signal()       # a's last beat consumed
        b_done = Signal()
        flush = Signal()        # both done, `held` still to be emitted

        a_head = head(a.payload)
        b_head = head(b.payload)
        pick_a = Signal()
        m.d.comb += pick_a.eq(~a_done & (b_done | (a_head <= b_head)))

        out_free = ~out.valid | out.ready
        step = Signal()
        m.d.comb += [
            step.eq((a_done | a.valid) & (b_done | b.valid) & ~(a_done & b_done) & ~flush
                    & (out_free | ~started)),
            a.ready.eq(step & pick_a),
            b.ready.eq(step & ~pick_a),
        ]

        a_ranks, b_ranks = lanes_to_ranks(a.payload), lanes_to_ranks(b.payload)
        beat = [Signal(elem, name=f"beat{i}") for i in range(w)]
        beat_last = Signal()
        m.d.comb += [x.eq(Mux(pick_a, ra, rb)) for x, ra, rb in zip(beat, a_ranks, b_ranks, strict=True)]
        m.d.comb += beat_last.eq(Mux(pick_a, a.payload.last, b.payload.last))

        # held ascending ++ beat reversed is bitonic: one half-cleaner splits it into two bitonic
        # halves, every element of the lower <= every element of the upper; each is then sorted.
        cleaned = comb_network(m, [[(i, 2 * w - 1 - i) for i in range(w)]], held + beat, "cleaned")
        lower = comb_network(m, merge_layers(w), cleaned[:w], "lower")
        upper = comb_network(m, merge_layers(w), cleaned[w:], "upper")
        upper_empty = upper[0][elem - 1]          # its lowest element is padding
        final = Signal()
        m.d.comb += final.eq(step & (a_done | (pick_a & beat_last)) & (b_done | (~pick_a & beat_last)))

        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(step):
            m.d.sync += started.eq(1)
            with m.If(pick_a & beat_last):
                m.d.sync += a_done.eq(1)
            with m.If(~pick_a & beat_last):
                m.d.sync += b_done.eq(1)
            with m.If(~started):
                m.d.sync += [h.eq(x) for h, x in zip(held, beat, strict=True)]
            with m.Else():
                m.d.sync += [h.eq(x) for h, x in zip(held, upper, strict=True)]
                m.d.sync += [out.valid.eq(1), out.payload.last.eq(final & upper_empty)]
                ranks_to_lanes(m.d.sync, lower, out.payload, self.index_bits, self.key_bits)
            with m.If(final):
                with m.If(upper_empty):
                    m.d.sync += [started.eq(0), a_done.eq(0), b_done.eq(0)]
                with m.Else():
                    m.d.sync += flush.eq(1)
        with m.If(flush & out_free):
            m.d.sync += [out.valid.eq(1), out.payload.last.eq(1),
                         flush.eq(0), started.eq(0), a_done.eq(0), b_done.eq(0)]
            ranks_to_lanes(m.d.sync, held, out.payload, self.index_bits, self.key_bits)
        return m
