from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int, module_name
from pyhdl.pointacc.bitonic_sorter import check_width
from pyhdl.pointacc.streams import check_key_format, key_beat_layout
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, INDEX_BITS

PARITY_BITS = 3     # the low bits of a parity-last key (KeyFormat.down): x & 1, y & 1, z & 1


class Downsampler(wiring.Component):
    """Stride-2 output points of a sorted list of parity-last keys (``KeyFormat.down``): each key
    with its parity bits cleared (``KeyFormat.quantise``), each distinct one once, packed into full
    beats, ``width`` keys a cycle.

    The points of one output voxel are neighbours in parity-last order, so a key survives when its
    quantised key differs from its predecessor's (the last lane of the beat before, for lane 0).
    Stage 1 registers the beat's quantised keys and survivors; stage 2 packs the survivors behind
    the up to ``width - 1`` left over from the beats before and emits a beat whenever ``width`` are
    there, and at the list's ``last`` the rest with ``last`` (a second beat, one cycle later, when
    the leftovers and the last beat's survivors are more than ``width``). Output ``idx`` = rank:
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

    Timing: a beat taken on cycle ``t`` leaves on ``t + latency`` (``latency = 2``), one beat a
    cycle, plus one cycle at the end of a list when the final output takes two beats; ``keys.ready``
    is low only while ``points`` is held or that extra beat waits.
    """

    latency = 2

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
        alive, s1_last, s1_valid = Signal(w), Signal(), Signal()
        prev, have_prev = Signal(kb), Signal()
        pending = Signal()                      # the second beat of a list's end waits
        out_free = ~out.valid | out.ready
        fire = s1_valid & out_free & ~pending   # stage 2 takes stage 1
        take = src.valid & src.ready
        m.d.comb += src.ready.eq(~s1_valid | fire)
        lanes = src.payload.lanes
        quant = [Cat(Const(0, PARITY_BITS), lanes[i].key[PARITY_BITS:]) for i in range(w)]
        first = ~have_prev | (quant[0] != prev)
        new = Cat(first, *(quant[i] != quant[i - 1] for i in range(1, w))) & src.payload.keep
        with m.If(take):
            m.d.sync += [*(q[i].eq(quant[i]) for i in range(w)), alive.eq(new), s1_last.eq(src.payload.last),
                         s1_valid.eq(1), prev.eq(quant[w - 1]), have_prev.eq(~src.payload.last)]
        with m.Elif(fire):
            m.d.sync += s1_valid.eq(0)

        # Stage 2: pack the survivors behind the leftovers.
        count = Signal(range(w + 1))
        m.d.comb += count.eq(sum(alive[i] for i in range(w)))
        packed = []
        for j in range(w):                      # survivor number j: the lane with j survivors below it
            sel = Signal(kb, name=f"packed{j}")
            hits = [alive[i] & (sum(alive[k] for k in range(i)) == j) for i in range(j, w)]
            m.d.comb += sel.eq(0)
            for i, hit in zip(range(j, w), hits, strict=True):
                with m.If(hit):
                    m.d.comb += sel.eq(q[i])
            packed.append(sel)
        left = [Signal(kb, name=f"left{i}") for i in range(w)]
        n_left = Signal(range(w))
        packed_at = Array(packed + [Const(0, kb)] * w)
        combined = [Mux(k < n_left, left[k], packed_at[(k - n_left)[:lw + 1]]) if k < w - 1     # n_left < w
                    else packed_at[(k - n_left)[:lw + 1]] for k in range(2 * w)]
        total = Signal(range(2 * w))
        m.d.comb += total.eq(n_left + count)
        beat_no = Signal(self.index_bits - lw)

        def emit(keys, n, last):          # n: the kept lanes (a constant w, or a count below w)
            keep = (1 << w) - 1 if isinstance(n, int) else (Const(1, w + 1) << n) - 1
            m.d.sync += [out.valid.eq(1), out.payload.keep.eq(keep), out.payload.last.eq(last),
                         beat_no.eq(Mux(last, 0, beat_no + 1))]
            for i in range(w):
                m.d.sync += [out.payload.lanes[i].key.eq(keys[i]), out.payload.lanes[i].idx.eq(Cat(Const(i, lw),
                                                                                                   beat_no))]

        with m.If(fire):
            with m.If(total >= w):
                emit(combined[:w], w, s1_last & (total == w))
                m.d.sync += [n_left.eq(total - w), pending.eq(s1_last & (total != w))]
                m.d.sync += [left[i].eq(combined[w + i]) for i in range(w)]
            with m.Elif(s1_last):
                emit(combined[:w], total, 1)
                m.d.sync += n_left.eq(0)
            with m.Else():
                m.d.sync += [out.valid.eq(0), n_left.eq(total)]
                m.d.sync += [left[i].eq(combined[i]) for i in range(w)]
        with m.Elif(pending & out_free):
            emit(left, n_left, 1)
            m.d.sync += [n_left.eq(0), pending.eq(0)]
        with m.Elif(out_free):
            m.d.sync += out.valid.eq(0)
        return m
