from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int, module_name
from pyhdl.pointacc.bitonic_sorter import check_width
from pyhdl.pointacc.streams import check_key_format, key_beat_layout, pair_beat_layout, query_beat_layout
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, INDEX_BITS


class Intersect(wiring.Component):
    """Kernel-map pairs of one offset: the sorted input keys intersected with the sorted output
    keys shifted by the offset, ``width`` keys per side per cycle.

    Both sides are held one beat at a time; each step compares all ``width × width`` lane pairs
    for equality and emits every match as ``(in_idx, out_idx)``, then retires the beat whose
    last lane ranks lower (both on a tie; an empty lane ranks above every key): nothing later
    on the other side can match it. The output keys are shifted as they arrive, field by field
    on keys widened by two bits per coordinate (``KeyFormat.widen``), so a shift past a
    coordinate limit can neither wrap nor match, and the shifted keys stay sorted.

    Parameters
    ----------
    width : int
        Lanes per beat, a power of two (default 8).
    coord_bits, batch_bits, index_bits : int
        Key format (``sw.pointcloud.keys``) and index width.

    Attributes
    ----------
    inputs : In(stream of key_beat_layout)
        Input keys, sorted, unique within the list, ``idx`` = input point index.
    outputs : In(stream of query_beat_layout)
        Output keys, sorted, unique, ``idx`` = output point index, and the kernel offset ``d``
        (same in every beat of the list): pairs are where ``input == output + d``.
    pairs : Out(stream of pair_beat_layout)
        The matches of each step, packed into the lowest lanes, in ascending key order; the
        beat of the final step (after both lists' ``last`` beats) carries ``last``, even with no
        match. Steps without matches emit nothing.

    Timing: beats are registered on arrival (``ready`` depends only on state and
    ``pairs.ready``); a step runs every cycle both sides hold a beat (or one side has finished
    and the other drains) and the output register is free; its pairs appear the next cycle.
    An intersection of ``p`` input and ``q`` output beats takes between ``max(p, q)`` and
    ``p + q`` steps (``verif/golden/pointacc.py: intersect_steps``). Without back-pressure a
    pair of lists takes ``steps + 1`` cycles: one to load its first beats, then a step per
    cycle; its final pair beat leaves while the next pair of lists loads.
    """

    def __init__(self, *, width: int = 8, coord_bits: int = COORD_BITS, batch_bits: int = BATCH_BITS,
                 index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.format = check_key_format(coord_bits, batch_bits)
        self.coord_bits, self.batch_bits = coord_bits, batch_bits
        self.index_bits = check_int("index_bits", index_bits)
        self.key_bits = self.format.key_bits
        self.name = module_name("intersect", width=width, coord_bits=coord_bits, batch_bits=batch_bits,
                                index_bits=index_bits)
        super().__init__({
            "inputs": In(stream.Signature(key_beat_layout(width, self.key_bits, index_bits))),
            "outputs": In(stream.Signature(query_beat_layout(width, self.key_bits, index_bits, coord_bits))),
            "pairs": Out(stream.Signature(pair_beat_layout(width, index_bits))),
        })

    def _widen(self, key, offset=None):
        """Widened key (``KeyFormat.widen``): fields ``f + d + 2**coord_bits``, ``coord_bits + 2`` bits."""
        c = self.coord_bits
        fields = []
        for axis, lo in (("z", 0), ("y", c), ("x", 2 * c)):
            f = key[lo:lo + c]
            if offset is None:
                fields.append(Cat(f, Const(0b01, 2)))
            else:
                d = offset[axis]
                fields.append((f + d.as_signed() + (1 << c))[:c + 2])
        return Cat(*fields, key[3 * c:])

    def elaborate(self, platform):
        m = Module()
        w, ib = self.width, self.index_bits
        wide = self.format.wide_key_bits
        ins, outs, pairs = self.inputs, self.outputs, self.pairs

        # The beat each side holds: widened keys, indices, keep, last; `full` when one is held.
        a_key = [Signal(wide, name=f"in_key{i}") for i in range(w)]
        a_idx = [Signal(ib, name=f"in_idx{i}") for i in range(w)]
        a_keep, a_last, a_full, a_done = Signal(w), Signal(), Signal(), Signal()
        b_key = [Signal(wide, name=f"out_key{i}") for i in range(w)]
        b_idx = [Signal(ib, name=f"out_idx{i}") for i in range(w)]
        b_keep, b_last, b_full, b_done = Signal(w), Signal(), Signal(), Signal()

        # The rank of a beat's highest lane: an empty lane (its key a don't-care) ranks above any key.
        a_top = Cat(Mux(a_keep[w - 1], a_key[w - 1], 0), ~a_keep[w - 1])
        b_top = Cat(Mux(b_keep[w - 1], b_key[w - 1], 0), ~b_keep[w - 1])
        out_free = ~pairs.valid | pairs.ready
        step = Signal()
        adv_a, adv_b, final = Signal(), Signal(), Signal()
        m.d.comb += [
            step.eq((a_full | a_done) & (b_full | b_done) & ~(a_done & b_done) & out_free),
            adv_a.eq(step & a_full & (b_done | (a_top <= b_top))),
            adv_b.eq(step & b_full & (a_done | (b_top <= a_top))),
            final.eq(step & (a_done | (adv_a & a_last)) & (b_done | (adv_b & b_last))),
            ins.ready.eq(~a_done & (~a_full | (adv_a & ~a_last))),
            outs.ready.eq(~b_done & (~b_full | (adv_b & ~b_last))),
        ]

        with m.If(ins.valid & ins.ready):
            m.d.sync += [a_full.eq(1), a_keep.eq(ins.payload.keep), a_last.eq(ins.payload.last)]
            for i in range(w):
                m.d.sync += [a_key[i].eq(self._widen(ins.payload.lanes[i].key)),
                             a_idx[i].eq(ins.payload.lanes[i].idx)]
        with m.Elif(adv_a):
            m.d.sync += a_full.eq(0)
        with m.If(outs.valid & outs.ready):
            m.d.sync += [b_full.eq(1), b_keep.eq(outs.payload.keep), b_last.eq(outs.payload.last)]
            for i in range(w):
                m.d.sync += [b_key[i].eq(self._widen(outs.payload.lanes[i].key, outs.payload.offset)),
                             b_idx[i].eq(outs.payload.lanes[i].idx)]
        with m.Elif(adv_b):
            m.d.sync += b_full.eq(0)

        # All width x width comparisons; keys are unique per list, so each input lane matches at
        # most one output lane and the match's out_idx is the OR over the matching lanes.
        both = a_full & b_full
        hit = [Signal(name=f"hit{i}") for i in range(w)]
        match_out = [Signal(ib, name=f"match_out{i}") for i in range(w)]
        for i in range(w):
            eq = [Signal(name=f"eq{i}_{j}") for j in range(w)]
            for j in range(w):
                m.d.comb += eq[j].eq(both & a_keep[i] & b_keep[j] & (a_key[i] == b_key[j]))
            m.d.comb += hit[i].eq(Cat(*eq).any())
            acc = Const(0, ib)
            for j in range(w):
                acc = acc | Mux(eq[j], b_idx[j], 0)
            m.d.comb += match_out[i].eq(acc)

        # Pack the matches into the lowest lanes: lane k takes the input lane that is the k-th hit.
        # before[i]: hits among input lanes 0 .. i-1; before[w]: all of them.
        before = [Const(0, bits_for(w))]
        for i in range(w):
            upto = Signal(bits_for(w), name=f"hits_upto{i}")
            m.d.comb += upto.eq(before[-1] + hit[i])
            before.append(upto)

        lanes = []
        for k in range(w):
            sel_in, sel_out = Const(0, ib), Const(0, ib)
            for i in range(k, w):
                take = Signal(name=f"lane{k}_takes{i}")
                m.d.comb += take.eq(hit[i] & (before[i] == k))
                sel_in = sel_in | Mux(take, a_idx[i], 0)
                sel_out = sel_out | Mux(take, match_out[i], 0)
            lanes.append((sel_in, sel_out))

        with m.If(pairs.ready):
            m.d.sync += pairs.valid.eq(0)
        with m.If(step):
            with m.If(adv_a & a_last):
                m.d.sync += a_done.eq(1)
            with m.If(adv_b & b_last):
                m.d.sync += b_done.eq(1)
            with m.If(final):
                m.d.sync += [a_done.eq(0), b_done.eq(0)]
            with m.If((before[w] != 0) | final):
                m.d.sync += [pairs.valid.eq(1), pairs.payload.last.eq(final)]
            for k, (sel_in, sel_out) in enumerate(lanes):
                m.d.sync += [pairs.payload.lanes[k].in_idx.eq(sel_in),
                             pairs.payload.lanes[k].out_idx.eq(sel_out),
                             pairs.payload.keep[k].eq(before[w] > k)]
        return m
