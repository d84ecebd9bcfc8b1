from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.bitonic_sorter import cas_layers, check_width
from pyhdl.pointacc.network import merge_layers
from pyhdl.pointacc.pipeline import one_hot_counts, share, skid_output, stage_control
from pyhdl.pointacc.streams import check_key_format, key_beat_layout, pair_beat_layout, query_beat_layout
from pyhdl.replicas import replicas
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, INDEX_BITS

ORDER_CHUNK = 16     # bits per slice of the order comparisons (an 8-cell carry chain)
SWAP_COPIES = 4      # flag registers of each compare-exchange of the merge, each swapping ~21 bits


def _greater(gt, lt):
    """``x > y`` from the per-slice flags ``gt[c] = x[c] > y[c]`` and ``lt[c] = y[c] > x[c]``
    (lowest slice first): the highest slice that differs decides."""
    out = gt[0]
    for g, lo in zip(gt[1:], lt[1:], strict=True):
        out = g | (~lo & out)
    return out


def intersect_latency(width: int) -> int:
    """Cycles from a step of :class:`Intersect` of ``width`` lanes to its pair beat: two per layer
    of the merge of ``2 width`` keys, the neighbour comparison, the packing selects, the output
    register."""
    return 2 * len(merge_layers(2 * check_width(width))) + 3


class Intersect(wiring.Component):
    """Kernel-map pairs of one offset: the sorted input keys intersected with the sorted output
    keys shifted by the offset, ``width`` keys per side per cycle.

    Each side holds a current beat and the next one; each step finds every key the current
    beats share and emits it as ``(in_idx, out_idx)``, then retires the beat whose last lane
    ranks lower (both on a tie; an empty lane ranks above every key): nothing later on the other
    side can match it. The output keys are shifted as they arrive, field by field on keys widened
    by two bits per coordinate (``KeyFormat.widen``), so a shift past a coordinate limit can
    neither wrap nor match, and the shifted keys stay sorted.

    The shared keys are found as PointAcc finds them, by merging: the input beat ascending and
    the output beat reversed form a bitonic sequence of ``2 width`` keys, which a bitonic merge
    sorts; a key in both beats then sits next to its twin, and ``2 width - 1`` comparisons of
    neighbours find the pairs, already in ascending key order. (An all-pairs equality crossbar,
    ``width²`` comparisons of 62-bit keys, is smaller but does not route on an ECP5: every key
    bit fans out to ``width`` comparators in one spot.)

    Pipelining: a beat arrives into the next-beat register and reaches the current one from
    there; the two order bits of the current beats' last lanes are registered, computed a cycle
    ahead by comparing the four pairs of current and next tops from the registers (16-bit slices
    compared both ways in parallel) and selecting one pair by the sides' ``free`` bits, so the
    step loop holds no comparison. The keys of a step
    pass ``2 log2(2 width)`` merge stages (two a layer: elements and slice flags, then the
    exchange), the neighbour comparisons, the packing selects and the packed beat (a step
    with no match and not final is not pushed into it).

    Every ready is a register: each input has a skid register behind ``next`` (an accepted beat
    that finds ``next`` held waits there, and ``ready`` is low while it is full; a copy of its
    full bit a lane selects what ``next`` loads), and the packed
    beat goes into the ``pairs`` register or, when that one is held, into an output skid register;
    the match stages run under ``pipeline.stage_control`` with the emptiness of that skid
    register as their ready, so ``pairs.ready`` only reaches the two output registers.

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
    one. A step's pairs leave ``latency = 2 log2(2 width) + 3`` cycles after it (11 at width
    8); a beat accepted on cycle ``t`` steps on ``t + 2`` at the earliest. Without back-pressure, jobs back to back take
    ``sum(steps) + 1 + latency`` cycles from the first beat accepted to the last pair beat.
    ``ready`` of each input is high when its skid register is empty.
    """

    def __init__(self, *, width: int = 8, coord_bits: int = COORD_BITS, batch_bits: int = BATCH_BITS,
                 index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.format = check_key_format(coord_bits, batch_bits)
        self.coord_bits, self.batch_bits = coord_bits, batch_bits
        self.index_bits = check_int("index_bits", index_bits)
        self.key_bits = self.format.key_bits
        self.latency = intersect_latency(width)
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
        room, room_next = Signal(), Signal()            # the output skid register is empty
        load0_next = Signal()
        # Each match stage is ~1,400 flip-flops wide: its enable is 2 w flip-flop copies.
        valid, load, enables = stage_control(m, self.latency - 1, step, room, "match",
                                             out_ready_next=room_next, load0_next=load0_next, copies=2 * w)

        def beat(name):
            return dict(key=[Signal(wide, name=f"{name}_key{i}") for i in range(w)],
                        idx=[Signal(ib, name=f"{name}_idx{i}") for i in range(w)],
                        keep=Signal(w, name=f"{name}_keep"), last=Signal(name=f"{name}_last"),
                        top=Signal(wide + 1, name=f"{name}_top"), full=Signal(name=f"{name}_full"))

        sides = {}
        for side, port in (("in", self.inputs), ("out", self.outputs)):
            keys = [self._widen(port.payload.lanes[i].key, None if side == "in" else port.payload.offset)
                    for i in range(w)]
            sides[side] = dict(port=port, name=side, keys=keys, cur=beat(side), nxt=beat(f"{side}_next"),
                               skid=beat(f"{side}_skid"), done=Signal(name=f"{side}_done"),
                               adv=Signal(name=f"{side}_adv"),
                               free=Signal(name=f"{side}_free", init=1), le=Signal(name=f"{side}_le"),
                               le_next=Signal(name=f"{side}_le_next"), done_next=Signal(name=f"{side}_done_next"),
                               full_next=Signal(name=f"{side}_full_next"))
        a, b = sides["in"], sides["out"]

        # The order of the current beats' last lanes (an empty lane ranks above any key). A side
        # that is done may hold the first beat of the next pair of lists as its current one.
        # `le`: this side's current last lane ranks at most the other's (a register).
        a_le_b, b_le_a = a["le"], b["le"]
        ca, cb = a["cur"], b["cur"]

        def decide(full, done, le, load0):
            """``(step, advances of a and b)`` from the sides' current-beat full bits, done bits
            and order bits (pairs ``(a, b)``) and the stages' ``load[0]``."""
            stepped = (full[0] | done[0]) & (full[1] | done[1]) & ~(done[0] & done[1]) & load0
            return (stepped, stepped & full[0] & ~done[0] & (done[1] | le[0]),
                    stepped & full[1] & ~done[1] & (done[0] | le[1]))

        decided = decide((ca["full"], cb["full"]), (a["done"], b["done"]), (a_le_b, b_le_a), load[0])
        m.d.comb += [step.eq(decided[0]), a["adv"].eq(decided[1]), b["adv"].eq(decided[2]),
                     final.eq(step & (a["done"] | (a["adv"] & ca["last"])) & (b["done"] | (b["adv"] & cb["last"])))]
        # `free` (the current register may take `next`: its data loads then, a don't-care when
        # `next` is empty) enables about 1,500 flip-flops of a side, so it is a register: the
        # same function of the next full, done and order bits and `load[0]`, the order bit
        # (the latest, behind its comparison) selecting last.
        for x in (a, b):
            m.d.comb += [x["done_next"].eq((x["done"] | (x["adv"] & x["cur"]["last"])) & ~final),
                         x["full_next"].eq(Mux(x["free"], x["nxt"]["full"], x["cur"]["full"]))]
        for x, i in ((a, 1), (b, 2)):
            nexts = {}
            for le in (0, 1):
                les = (le, b["le_next"]) if x is a else (a["le_next"], le)
                adv = decide((a["full_next"], b["full_next"]), (a["done_next"], b["done_next"]), les, load0_next)[i]
                nexts[le] = ~x["full_next"] | adv
            side = "in" if x is a else "out"
            free_d = Signal(name=f"{side}_free_next")
            m.d.comb += free_d.eq(Mux(x["le_next"], nexts[1], nexts[0]))
            m.d.sync += x["free"].eq(free_d)
            x["free_d"] = free_d
            x["free_lanes"] = replicas(m, free_d, w, f"{side}_free", init=1)   # a copy a lane
        fields = ("keep", "last", "top")

        def take(dst, src):
            return [dst[f].eq(src[f]) for f in fields]

        def take_lanes(dst, src, enables):
            """Lane ``i``'s key and index under ``enables[i]``."""
            for i, enable in enumerate(enables):
                with m.If(enable):
                    m.d.sync += [dst[f][i].eq(src[f][i]) for f in ("key", "idx")]

        for x in (a, b):
            cur, nxt, skid, port = x["cur"], x["nxt"], x["skid"], x["port"]
            m.d.sync += x["done"].eq(x["done_next"])
            m.d.comb += port.ready.eq(~skid["full"])
            top = Cat(Mux(port.payload.keep[w - 1], x["keys"][w - 1], 0), ~port.payload.keep[w - 1])
            arriving = dict(key=x["keys"], idx=[port.payload.lanes[i].idx for i in range(w)],
                            keep=port.payload.keep, last=port.payload.last, top=top)

            # Skid register: takes the port's payload while empty, full when an accepted beat
            # finds `next` held (`next` then reloads from here), so `ready` is a register. Data
            # registers load whenever their content may be replaced (don't-cares when empty),
            # so only the full flags depend on more than one step decision.
            accept = port.valid & ~skid["full"]
            skid_next = Signal(name=f"{x['name']}_skid_full_next")
            m.d.comb += skid_next.eq(Mux(~nxt["full"] | x["free"], 0, skid["full"] | accept))
            m.d.sync += skid["full"].eq(skid_next)
            # A copy of the skid register's full bit a lane selects that lane's ~80 bits of `next`.
            skid_lanes = replicas(m, skid_next, w, f"{x['name']}_skid_full")
            with m.If(~skid["full"]):
                m.d.sync += take(skid, arriving)
            take_lanes(skid, arriving, [~skid["full"]] * w)
            with m.If(~nxt["full"] | x["free"]):
                m.d.sync += nxt["full"].eq(skid["full"] | port.valid)
                with m.If(skid["full"]):
                    m.d.sync += take(nxt, skid)
                with m.Else():
                    m.d.sync += take(nxt, arriving)
            # The keys and indices of `next` and `current` load under the lanes' copies of `free`.
            via = {f: [Mux(s, sv, av) for s, sv, av in zip(skid_lanes, skid[f], arriving[f], strict=True)]
                   for f in ("key", "idx")}
            take_lanes(nxt, via, [~nxt["full"] | f for f in x["free_lanes"]])
            with m.If(x["free"]):
                m.d.sync += take(cur, nxt) + [cur["full"].eq(nxt["full"])]
            take_lanes(cur, nxt, x["free_lanes"])
        # The order of next cycle's current tops. Next cycle's current top of a side is its `next`
        # top where `free`, else its current top, so all four pairs (current or next of each side)
        # are compared in parallel straight from the registers, and each side's `free` (a copy of
        # its own) selects one result: `free` reaches the order bits through one LUT, not through
        # a 63-bit multiplexer and the comparison. Each comparison is split into ORDER_CHUNK-bit
        # slices compared both ways (short carry chains), combined in two LUT levels: x > y and
        # y > x from the same flags. Where the current register takes an empty `next`, its side is
        # not full next cycle and its order bits are don't-cares.
        order = {}
        for i, ta in enumerate((a["cur"]["top"], a["nxt"]["top"])):
            for j, tb in enumerate((b["cur"]["top"], b["nxt"]["top"])):
                gx = [ta[lo:lo + ORDER_CHUNK] > tb[lo:lo + ORDER_CHUNK] for lo in range(0, len(ta), ORDER_CHUNK)]
                gy = [tb[lo:lo + ORDER_CHUNK] > ta[lo:lo + ORDER_CHUNK] for lo in range(0, len(ta), ORDER_CHUNK)]
                order[i, j] = (~_greater(gx, gy), ~_greater(gy, gx))
        fa, fb = (replicas(m, x["free_d"], 1, f"{x['name']}_free_order", init=1)[0] for x in (a, b))
        for k, x in enumerate((a, b)):
            m.d.comb += x["le_next"].eq(Mux(fa, Mux(fb, order[1, 1][k], order[1, 0][k]),
                                            Mux(fb, order[0, 1][k], order[0, 0][k])))
        m.d.sync += [a_le_b.eq(a["le_next"]), b_le_a.eq(b["le_next"])]

        # Stages 1 .. 2L: the two current beats as one bitonic sequence of 2 width elements (the
        # input beat ascending, the output beat reversed; an empty lane, or a side that is done,
        # is the largest element), sorted by a bitonic merge (L layers, two stages each): a key
        # found in both beats ends up as two neighbours, one of each side.
        # An element is empty (its lane is not kept, or the sides do not both hold a beat of the
        # lists being intersected) by its top bit alone: its other bits are don't-cares. Empty
        # elements then rank above every key but in any order among themselves, so the sequence
        # is bitonic only below them; that suffices (0-1 principle: for every threshold at or
        # below the empty ones, the network sorts), and a neighbour test ignores empty elements.
        both = ca["full"] & ~a["done"] & cb["full"] & ~b["done"]

        def element(x, i, side):
            return Cat(x["idx"][i], Const(side, 1), x["key"][i], ~(both & x["keep"][i]))

        elements = [element(ca, i, 0) for i in range(w)] + [element(cb, j, 1) for j in reversed(range(w))]
        n = 2 * len(merge_layers(2 * w))
        merged, merged_last = cas_layers(m, merge_layers(2 * w), elements, final, enables[:n], "merge",
                                         swap_copies=SWAP_COPIES)
        # Stage 2L + 1: neighbours k and k + 1 of different sides with equal keys are a pair.
        near = 2 * w - 1
        hit = Signal(near)
        s_in = [Signal(ib, name=f"near{k}_in_idx") for k in range(near)]
        s_out = [Signal(ib, name=f"near{k}_out_idx") for k in range(near)]
        s_last = Signal()
        for k in range(near):
            x, y = merged[k], merged[k + 1]
            side_x, side_y, empty = x[ib], y[ib], x[-1] | y[-1]
            with m.If(share(enables[n], k)):
                m.d.sync += [hit[k].eq(~empty & (side_x != side_y) & (x[ib + 1:] == y[ib + 1:])),
                             s_in[k].eq(Mux(side_x, y[:ib], x[:ib])), s_out[k].eq(Mux(side_x, x[:ib], y[:ib]))]
        with m.If(share(enables[n], near)):
            m.d.sync += s_last.eq(merged_last)
        # Stage 2L + 2: neighbour pairs `2j` and `2j + 1` never both hit (a key is in each list
        # once, so a hit takes two elements), so slot `j` holds the pair starting at one of them;
        # lane `l` takes the slot that is the `l`-th with a pair (a one-hot count of the slots
        # below, no adder), a `w`-to-`w` packing.
        slot_hit = [hit[2 * j] | (hit[2 * j + 1] if 2 * j + 1 < near else 0) for j in range(w)]
        below = one_hot_counts(m, slot_hit, "slots_below")
        take = {(lane, j): Signal(name=f"lane{lane}_takes{j}") for lane in range(w) for j in range(lane, w)}
        t_in = [Signal(ib, name=f"slot{j}_in_idx") for j in range(w)]
        t_out = [Signal(ib, name=f"slot{j}_out_idx") for j in range(w)]
        t_keep, t_last, t_emit = Signal(w), Signal(), Signal()
        for j in range(w):
            odd = 2 * j + 1 if 2 * j + 1 < near else 2 * j
            with m.If(share(enables[n + 1], j)):
                m.d.sync += [t.eq(slot_hit[j] & below[j][lane]) for (lane, jj), t in take.items() if jj == j]
                m.d.sync += [t_in[j].eq(Mux(hit[2 * j], s_in[2 * j], s_in[odd])),
                             t_out[j].eq(Mux(hit[2 * j], s_out[2 * j], s_out[odd]))]
        with m.If(share(enables[n + 1], w)):
            m.d.sync += [t_keep[lane].eq(~Cat(*below[w][:lane + 1]).any()) for lane in range(w)]
            m.d.sync += [t_last.eq(s_last), t_emit.eq(Cat(*slot_hit).any() | s_last)]
        # Output: the packed beat goes into the `pairs` register, or, when that one is held,
        # into the skid register, whose emptiness (`room`) is the ready of the match stages.
        out = self.pairs
        packed = Signal.like(out.payload, name="packed")
        for lane in range(w):
            sel_in, sel_out = Const(0, ib), Const(0, ib)
            for j in range(lane, w):
                sel_in = sel_in | Mux(take[lane, j], t_in[j], 0)
                sel_out = sel_out | Mux(take[lane, j], t_out[j], 0)
            m.d.comb += [packed.lanes[lane].in_idx.eq(sel_in), packed.lanes[lane].out_idx.eq(sel_out)]
        m.d.comb += [packed.keep.eq(t_keep), packed.last.eq(t_last)]
        # A step with no match that is not final is dropped here, at the push (not as it enters a
        # stage, which would put the match test into every stage's next load enable).
        room_r, room_next_r = skid_output(m, out, packed, valid[-1] & t_emit & room, "pairs")
        m.d.comb += [room.eq(room_r), room_next.eq(room_next_r)]
        return m
