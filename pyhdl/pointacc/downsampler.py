from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int, module_name
from pyhdl.pointacc.bitonic_sorter import check_width
from pyhdl.pointacc.pipeline import one_hot_counts
from pyhdl.pointacc.streams import check_key_format, key_beat_layout
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, INDEX_BITS

PARITY_BITS = 3     # the low bits of a parity-last key (KeyFormat.down): x & 1, y & 1, z & 1


class Downsampler(wiring.Component):
    """Stride-2 output points of a sorted list of parity-last keys (``KeyFormat.down``): each key
    with its parity bits cleared (``KeyFormat.quantise``), each distinct one once, packed into full
    beats, ``width`` keys a cycle.

    The points of one output voxel are neighbours in parity-last order, so a key survives when its
    quantised key differs from its predecessor's (the last lane of the beat before, for lane 0).
    Stage 1 registers the beat's quantised keys and survivors; stage 2 which lane holds the
    ``j``-th survivor (one-hot) and their count; stage 3 packs the survivors into the lowest
    lanes; stage 4 places them, rotated by the count of the up to
    ``width - 1`` left over from the beats before, above those leftovers and emits a beat whenever
    ``width`` are there, and at the list's ``last`` the rest with ``last`` (a second beat, one cycle
    later, when the leftovers and the last beat's survivors are more than ``width``). Output ``idx`` = rank:
    lane ``i`` of output beat ``j`` holds ``j * width + i``.

    Parameters
    ----------
    width, coord_bits, batch_bits, index_bits : int
        Lanes per beat, key format, index width.

    Attributes
    ----------
    keys : In(stream of key_beat_layout)
        One sorted list of parity-last keys (``idx`` ignored).
    points : Out(stream of key_beat_layout)
        The list of its distinct quantised keys.

    Timing: a beat taken on cycle ``t`` leaves on ``t + latency`` (``latency = 4``), one beat a
    cycle, plus one cycle at the end of a list when the final output takes two beats; ``keys.ready``
    is low only while ``points`` is held or that extra beat waits.
    """

    latency = 4

    def __init__(self, *, width: int = 8, coord_bits: int = COORD_BITS, batch_bits: int = BATCH_BITS,
                 index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.format = check_key_format(coord_bits, batch_bits)
        self.key_bits = self.format.key_bits
        self.index_bits = check_int("index_bits", index_bits, minimum=bits_for(width - 1))
        self.name = module_name("downsampler", width=width, coord_bits=coord_bits, batch_bits=batch_bits,
                                index_bits=index_bits)
        layout = key_beat_layout(width, self.key_bits, index_bits)
        super().__init__({"keys": In(stream.Signature(layout)), "points": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        w, kb = self.width, self.key_bits
        lw = w.bit_length() - 1
        src, out = self.keys, self.points

        # Stage 1: quantised keys and survivors of the beat taken.
        q = [Signal(kb, name=f"q{i}") for i in range(w)]
        alive, s1_last, s1_valid = Signal(w, name="alive"), Signal(name="s1_last"), Signal(name="s1_valid")
        prev, have_prev = Signal(kb, name="prev"), Signal(name="have_prev")
        # Stage 2: for each output lane j, which lane holds survivor j (one-hot), and the count.
        # Stage 3: the survivors packed into the lowest lanes (zero above).
        hits = {(j, i): Signal(name=f"lane{j}_takes{i}") for j in range(w) for i in range(j, w)}
        q2 = [Signal(kb, name=f"q2_{i}") for i in range(w)]
        pk = [Signal(kb, name=f"packed{j}") for j in range(w)]
        n2, count = Signal(range(w + 1), name="n2"), Signal(range(w + 1), name="count")
        s2_last, s2_valid, s3_last, s3_valid = (Signal(name=n) for n in ("s2_last", "s2_valid", "s3_last", "s3_valid"))
        pending = Signal()                      # the second beat of a list's end waits
        out_free = ~out.valid | out.ready
        fire = s3_valid & out_free & ~pending   # stage 4 takes stage 3
        move3 = s2_valid & (~s3_valid | fire)   # stage 3 takes stage 2
        move2 = s1_valid & (~s2_valid | move3)  # stage 2 takes stage 1
        take = src.valid & src.ready
        m.d.comb += src.ready.eq(~s1_valid | move2)
        lanes = src.payload.lanes
        quant = [Cat(Const(0, PARITY_BITS), lanes[i].key[PARITY_BITS:]) for i in range(w)]
        first = ~have_prev | (quant[0] != prev)
        new = Cat(first, *(quant[i] != quant[i - 1] for i in range(1, w))) & src.payload.keep
        with m.If(take):
            m.d.sync += [*(q[i].eq(quant[i]) for i in range(w)), alive.eq(new), s1_last.eq(src.payload.last),
                         s1_valid.eq(1), prev.eq(quant[w - 1]), have_prev.eq(~src.payload.last)]
        with m.Elif(move2):
            m.d.sync += s1_valid.eq(0)

        with m.If(move2):
            below = one_hot_counts(m, alive)       # below[i][c]: c survivors in lanes 0 .. i-1 (logic, no adder)
            m.d.sync += [t.eq(alive[i] & below[i][j]) for (j, i), t in hits.items()]
            m.d.sync += [r.eq(x) for r, x in zip(q2, q, strict=True)]
            m.d.sync += [n2.eq(Cat(*(_any(below[w][c] for c in range(w + 1) if c >> b & 1) for b in range(len(n2))))),
                         s2_last.eq(s1_last), s2_valid.eq(1)]
        with m.Elif(move3):
            m.d.sync += s2_valid.eq(0)
        with m.If(move3):
            for j in range(w):
                sel = Const(0, kb)
                for i in range(j, w):
                    sel = sel | Mux(hits[j, i], q2[i], 0)
                m.d.sync += pk[j].eq(sel)
            m.d.sync += [count.eq(n2), s3_last.eq(s2_last), s3_valid.eq(1)]
        with m.Elif(fire):
            m.d.sync += s3_valid.eq(0)

        # Stage 4: the packed survivors rotated by the leftovers' count fill the lanes above the
        # leftovers; whatever passes the beat's end stays, rotated, as the next leftovers.
        left = [Signal(kb, name=f"left{i}") for i in range(w)]
        n_left = Signal(range(w))
        rot = [Array(pk)[(k - n_left)[:lw]] for k in range(w)]          # pk[(k - n_left) mod w]
        lane = [Mux(k < n_left, left[k], rot[k]) for k in range(w - 1)] + [rot[w - 1]]     # n_left < w
        total = Signal(range(2 * w))
        m.d.comb += total.eq(n_left + count)
        beat_no = Signal(self.index_bits - lw)

        def mask(n):
            return (Const(1, w + 1) << n) - 1

        # The output register loads whenever it is free (its payload a don't-care unless valid),
        # so `points.ready` reaches its enables through one LUT; what it loads depends on stage 4's
        # registers only: the leftovers when the list's second final beat waits, else the lanes.
        full = total >= w
        last = Mux(pending, 1, ~full | s3_last & (total == w))
        emit = fire & (full | s3_last) | pending
        with m.If(out_free):
            m.d.sync += [out.valid.eq(emit), out.payload.last.eq(last),
                         out.payload.keep.eq(Mux(pending, mask(n_left), Mux(full, (1 << w) - 1, mask(total))))]
            m.d.sync += [out.payload.lanes[i].key.eq(Mux(pending, left[i], lane[i])) for i in range(w)]
            m.d.sync += [out.payload.lanes[i].idx.eq(Cat(Const(i, lw), beat_no)) for i in range(w)]
            with m.If(emit):
                m.d.sync += beat_no.eq(Mux(last, 0, beat_no + 1))
        with m.If(fire):
            with m.If(full):
                m.d.sync += [n_left.eq(total - w), pending.eq(s3_last & (total != w))]
            with m.Elif(s3_last):
                m.d.sync += n_left.eq(0)
            with m.Else():
                m.d.sync += n_left.eq(total)
            # The next leftovers: the rotated lanes, but those below `n_left` stay when the beat
            # is not full (a don't-care after a list's end): one select behind the rotation.
            m.d.sync += [left[i].eq(Mux(~full & (i < n_left), left[i], rot[i])) for i in range(w - 1)]
            m.d.sync += left[w - 1].eq(rot[w - 1])          # n_left < w
        with m.Elif(pending & out_free):
            m.d.sync += [n_left.eq(0), pending.eq(0)]
        return m


def _any(xs):
    return Cat(*xs).any()
