from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.bitonic_sorter import check_width
from pyhdl.pointacc.pipeline import skid_output, stage_control
from pyhdl.pointacc.streams import check_key_format, key_beat_layout, pair_beat_layout, query_beat_layout
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, INDEX_BITS

ORDER_CHUNK = 16     # bits per slice of the order comparisons (an 8-cell carry chain)


def _greater(gt, lt):
    """``x > y`` from the per-slice flags ``gt[c] = x[c] > y[c]`` and ``lt[c] = y[c] > x[c]``
    (lowest slice first): the highest slice that differs decides."""
    out = gt[0]
    for g, lo in zip(gt[1:], lt[1:], strict=True):
        out = g | (~lo & out)
    return out


class Intersect(wiring.Component):
    """Kernel-map pairs of one offset: the sorted input keys intersected with the sorted output
    keys shifted by the offset, ``width`` keys per side per cycle.

    Each side holds a current beat and the next one; each step compares all ``width × width``
    lane pairs of the current beats for equality and emits every match as ``(in_idx, out_idx)``,
    then retires the beat whose last lane ranks lower (both on a tie; an empty lane ranks above
    every key): nothing later on the other side can match it. The output keys are shifted as
    they arrive, field by field on keys widened by two bits per coordinate (``KeyFormat.widen``),
    so a shift past a coordinate limit can neither wrap nor match, and the shifted keys stay
    sorted.

    Pipelining: a beat arrives into the next-beat register and reaches the current one from
    there; the two order bits of the current beats' last lanes are registered, computed a cycle
    ahead from the current and next beats of both sides (four comparisons, each from 16-bit
    slices compared both ways in parallel), so the step loop is a few LUTs. The matches of a
    step pass four stages (equalities, per-lane hit and matching ``out_idx``, packing selects,
    packed beat); a step with no match and not final vanishes in the third.

    Every ready is a register: each input has a skid register behind ``next`` (an accepted beat
    that finds ``next`` held waits there, and ``ready`` is low while it is full), and the packed
    beat goes into the ``pairs`` register or, when that one is held, into an output skid register;
    the first three match stages run under ``pipeline.stage_control`` with the emptiness of that
    skid register as their ready, so ``pairs.ready`` only reaches the two output registers.

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
    downsample : In(1)
        Stride-2 keys: both lists hold parity-last keys (``KeyFormat.down``), the output keys
        quantised, and ``input == output + d`` is compared as ``KeyFormat.widen_down`` says (hold
        it steady through a pair of lists).
    pairs : Out(stream of pair_beat_layout)
        The matches of each step, packed into the lowest lanes, in ascending key order; the
        beat of the final step (after both lists' ``last`` beats) carries ``last``, even with no
        match. Steps without matches emit nothing.

    Timing: a step every cycle both sides hold a current beat (or one side has finished and the
    other drains) and the first match stage is free; an intersection of ``p`` input and ``q``
    output beats takes between ``max(p, q)`` and ``p + q`` steps (``verif/golden/pointacc.py:
    intersect_steps``), and the next pair of lists steps the cycle after the final step of this
    one. A step's pairs leave ``latency = 4`` cycles after it; a beat accepted on cycle ``t``
    steps on ``t + 2`` at the earliest. Without back-pressure, jobs back to back take
    ``sum(steps) + 1 + latency`` cycles from the first beat accepted to the last pair beat.
    ``ready`` of each input is high when its skid register is empty.
    """

    latency = 4

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
            "downsample": In(1),
        })

    def _widen(self, key, offset=None):
        """Widened key (``KeyFormat.widen``): fields ``f + d + 2**coord_bits``, ``coord_bits + 2`` bits;
        with ``downsample``, of a parity-last key (``KeyFormat.widen_down``): halved fields
        ``h + (d >> 1) + 2**(coord_bits - 1)``, ``coord_bits + 1`` bits, over the parity bits XOR
        ``d & 1``."""
        c = self.coord_bits
        fields, halves, parity = [], [], key[:3]
        for n, (axis, lo) in enumerate((("z", 0), ("y", c), ("x", 2 * c))):
            f = key[lo:lo + c]
            h = key[3 + n * (c - 1):3 + (n + 1) * (c - 1)]
            if offset is None:
                fields.append(Cat(f, Const(0b01, 2)))
                halves.append(Cat(h, Const(0b01, 2)))
            else:
                d = offset[axis].as_signed()
                fields.append((f + d + (1 << c))[:c + 2])
                halves.append((h + (d >> 1) + (1 << (c - 1)))[:c + 1])
                parity = (parity ^ (d[0] << n))[:3]
        return Mux(self.downsample, Cat(parity, *halves, key[3 * c:]), Cat(*fields, key[3 * c:]))

    def elaborate(self, platform):
        m = Module()
        w, ib = self.width, self.index_bits
        wide = self.format.wide_key_bits
        step, final = Signal(), Signal()
        hit, s2_last = Signal(w), Signal()       # stage 2: per input lane, a match; the final step
        room, room_next = Signal(), Signal()            # the output skid register is empty
        valid, load = stage_control(m, self.latency - 1, step, room, "match",
                                    gate={2: hit.any() | s2_last}, out_ready_next=room_next)

        def beat(name):
            return dict(key=[Signal(wide, name=f"{name}_key{i}") for i in range(w)],
                        idx=[Signal(ib, name=f"{name}_idx{i}") for i in range(w)],
                        keep=Signal(w, name=f"{name}_keep"), last=Signal(name=f"{name}_last"),
                        top=Signal(wide + 1, name=f"{name}_top"), full=Signal(name=f"{name}_full"))

        sides = {}
        for side, port in (("in", self.inputs), ("out", self.outputs)):
            keys = [self._widen(port.payload.lanes[i].key, None if side == "in" else port.payload.offset)
                    for i in range(w)]
            sides[side] = dict(port=port, keys=keys, cur=beat(side), nxt=beat(f"{side}_next"),
                               skid=beat(f"{side}_skid"), done=Signal(name=f"{side}_done"),
                               adv=Signal(name=f"{side}_adv"), load=Signal(name=f"{side}_load"),
                               free=Signal(name=f"{side}_free"))
        a, b = sides["in"], sides["out"]

        # The order of the current beats' last lanes (an empty lane ranks above any key). A side
        # that is done may hold the first beat of the next pair of lists as its current one.
        a_le_b, b_le_a = Signal(), Signal()
        ca, cb = a["cur"], b["cur"]
        m.d.comb += [
            step.eq((ca["full"] | a["done"]) & (cb["full"] | b["done"]) & ~(a["done"] & b["done"]) & load[0]),
            a["adv"].eq(step & ca["full"] & ~a["done"] & (b["done"] | a_le_b)),
            b["adv"].eq(step & cb["full"] & ~b["done"] & (a["done"] | b_le_a)),
            final.eq(step & (a["done"] | (a["adv"] & ca["last"])) & (b["done"] | (b["adv"] & cb["last"]))),
        ]
        fields = ("keep", "last", "top")
        for x in (a, b):
            cur, nxt, skid, port = x["cur"], x["nxt"], x["skid"], x["port"]
            done_next = (x["done"] | (x["adv"] & cur["last"])) & ~final
            m.d.sync += x["done"].eq(done_next)
            # `free`: the current register may take `next` (its data loads then, a don't-care
            # when `next` is empty); `load`: it does.
            m.d.comb += [x["free"].eq(~cur["full"] | x["adv"]), x["load"].eq(nxt["full"] & x["free"]),
                         port.ready.eq(~skid["full"])]
            top = Cat(Mux(port.payload.keep[w - 1], x["keys"][w - 1], 0), ~port.payload.keep[w - 1])
            arriving = dict(key=x["keys"], idx=[port.payload.lanes[i].idx for i in range(w)],
                            keep=port.payload.keep, last=port.payload.last, top=top)

            def take(dst, src):
                return ([dst[f].eq(src[f]) for f in fields] +
                        [r.eq(v) for f in ("key", "idx") for r, v in zip(dst[f], src[f], strict=True)])

            # Skid register: takes the port's payload while empty, full when an accepted beat
            # finds `next` held (`next` then reloads from here), so `ready` is a register. Data
            # registers load whenever their content may be replaced (don't-cares when empty),
            # so only the full flags depend on more than one step decision.
            accept = port.valid & ~skid["full"]
            with m.If(~skid["full"]):
                m.d.sync += take(skid, arriving)
            with m.If(~nxt["full"] | x["free"]):
                m.d.sync += [nxt["full"].eq(skid["full"] | port.valid), skid["full"].eq(0)]
                with m.If(skid["full"]):
                    m.d.sync += take(nxt, skid)
                with m.Else():
                    m.d.sync += take(nxt, arriving)
            with m.Elif(accept):
                m.d.sync += skid["full"].eq(1)
            with m.If(x["free"]):
                m.d.sync += take(cur, nxt) + [cur["full"].eq(nxt["full"])]
        # Next cycle's current tops are this cycle's current or next ones: compare all four pairs.
        # Each comparison is split into ORDER_CHUNK-bit slices compared both ways in parallel
        # (short carry chains), combined in two LUT levels: x > y and y > x from the same flags.
        ta = [ca["top"], a["nxt"]["top"]]
        tb = [cb["top"], b["nxt"]["top"]]
        a_gt = [[None, None], [None, None]]          # a_gt[i][j]: ta[i] > tb[j]
        b_gt = [[None, None], [None, None]]
        for i in range(2):
            for j in range(2):
                x, y = ta[i], tb[j]
                gx = [x[lo:lo + ORDER_CHUNK] > y[lo:lo + ORDER_CHUNK] for lo in range(0, len(x), ORDER_CHUNK)]
                gy = [y[lo:lo + ORDER_CHUNK] > x[lo:lo + ORDER_CHUNK] for lo in range(0, len(x), ORDER_CHUNK)]
                a_gt[i][j], b_gt[i][j] = _greater(gx, gy), _greater(gy, gx)
        la, lb = a["load"], b["load"]
        m.d.sync += [
            a_le_b.eq(~Mux(la, Mux(lb, a_gt[1][1], a_gt[1][0]), Mux(lb, a_gt[0][1], a_gt[0][0]))),
            b_le_a.eq(~Mux(la, Mux(lb, b_gt[1][1], b_gt[1][0]), Mux(lb, b_gt[0][1], b_gt[0][0]))),
        ]

        # Stage 1: all width x width equalities; keys are unique per list, so each input lane
        # matches at most one output lane.
        both = ca["full"] & ~a["done"] & cb["full"] & ~b["done"]
        eq = [[Signal(name=f"eq{i}_{j}") for j in range(w)] for i in range(w)]
        s1_in = [Signal(ib, name=f"s1_in_idx{i}") for i in range(w)]
        s1_out = [Signal(ib, name=f"s1_out_idx{j}") for j in range(w)]
        s1_last = Signal()
        with m.If(load[0]):
            m.d.sync += [eq[i][j].eq(both & ca["keep"][i] & cb["keep"][j] & (ca["key"][i] == cb["key"][j]))
                         for i in range(w) for j in range(w)]
            m.d.sync += [r.eq(v) for r, v in zip(s1_in + s1_out, ca["idx"] + cb["idx"], strict=True)]
            m.d.sync += s1_last.eq(final)
        # Stage 2: per input lane, a hit and the out_idx of its match (the OR over the lanes).
        s2_in = [Signal(ib, name=f"s2_in_idx{i}") for i in range(w)]
        s2_out = [Signal(ib, name=f"s2_out_idx{i}") for i in range(w)]
        with m.If(load[1]):
            for i in range(w):
                acc = Const(0, ib)
                for j in range(w):
                    acc = acc | Mux(eq[i][j], s1_out[j], 0)
                m.d.sync += [hit[i].eq(Cat(*eq[i]).any()), s2_out[i].eq(acc), s2_in[i].eq(s1_in[i])]
            m.d.sync += s2_last.eq(s1_last)
        # Stage 3 (a step with no match vanishes unless final): lane k takes the input lane that
        # is the k-th hit.
        take = {(k, i): Signal(name=f"lane{k}_takes{i}") for k in range(w) for i in range(k, w)}
        s3_in = [Signal(ib, name=f"s3_in_idx{i}") for i in range(w)]
        s3_out = [Signal(ib, name=f"s3_out_idx{i}") for i in range(w)]
        s3_keep, s3_last = Signal(w), Signal()
        with m.If(load[2]):
            for (k, i), t in take.items():
                m.d.sync += t.eq(hit[i] & (sum(hit[h] for h in range(i)) == k))
            count = sum(hit[i] for i in range(w))
            m.d.sync += [s3_keep[k].eq(count > k) for k in range(w)]
            m.d.sync += [r.eq(v) for r, v in zip(s3_in + s3_out, s2_in + s2_out, strict=True)]
            m.d.sync += s3_last.eq(s2_last)
        # Output: the packed beat goes into the `pairs` register, or, when that one is held,
        # into the skid register, whose emptiness (`room`) is the ready of the match stages.
        out = self.pairs
        packed = Signal.like(out.payload, name="packed")
        for k in range(w):
            sel_in, sel_out = Const(0, ib), Const(0, ib)
            for i in range(k, w):
                sel_in = sel_in | Mux(take[k, i], s3_in[i], 0)
                sel_out = sel_out | Mux(take[k, i], s3_out[i], 0)
            m.d.comb += [packed.lanes[k].in_idx.eq(sel_in), packed.lanes[k].out_idx.eq(sel_out)]
        m.d.comb += [packed.keep.eq(s3_keep), packed.last.eq(s3_last)]
        room_r, room_next_r = skid_output(m, out, packed, valid[2] & room, "pairs")
        m.d.comb += [room.eq(room_r), room_next.eq(room_next_r)]
        return m
