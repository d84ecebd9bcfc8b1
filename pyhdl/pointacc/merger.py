from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.bitonic_sorter import cas_layers, check_width, ranks_to_lanes
from pyhdl.pointacc.network import merge_layers
from pyhdl.pointacc.pipeline import chunk_flags, greater, share, skid_output, stage_control
from pyhdl.pointacc.streams import key_beat_layout
from pyhdl.replicas import replicas
from sw.pointcloud.keys import INDEX_BITS, KeyFormat

DEPTH = 5   # slots of each lane queue
ENTRY = 2   # an arriving element takes the lowest free slot from ENTRY up
SHIFTS = 2  # copies of a queue's shift, each for a group of its slots


class Merger(wiring.Component):
    """Merges two sorted key lists into one sorted list, ``width`` keys per cycle.

    FLiMS (Papaphilippou et al., "FLiMS: a fast lightweight 2-way merge sorter", IEEE TC 2022):
    the only feedback loop is one comparison per lane, so it pipelines, where a merge of the
    next beat with a held register has ``log2(width) + 1`` layers of 77-bit comparisons in its
    loop. Lane ``p`` of every beat of ``a`` enters queue ``p`` of ``a`` (likewise ``b``). If the
    lists' remaining elements are ``a_0 <= a_1 ...`` and ``b_0 <= ...``, the ``width`` smallest
    are ``min(a_i, b_(width-1-i))`` (a half-cleaner), and ``a_i`` heads queue ``(off_a + i) mod
    width``; ``off_a + off_b`` stays ``0 mod width`` because each step takes ``width`` elements,
    so head ``p`` of ``a`` always meets head ``width-1-p`` of ``b``. A step takes the smaller of
    every such pair (the winner's queue pops) and the ``width`` winners, a rotated bitonic
    sequence, are sorted by a bitonic merge (``log2(width)`` layers, two stages each). An
    element of a finished list's queues, or of the next pair of lists, ranks as infinite; a step
    needs every head present or its list finished, and emits one beat; the step after which no
    queue holds an element of the pair (both lists ended) carries ``last``, and the next pair of
    lists (already queued behind, one generation bit per slot) follows the cycle after.

    Pipelining: the ``a``-wins bit of each pair is registered and computed one cycle ahead from
    the two front slots of both queues (four comparisons a pair), for a step and for none. Those
    comparisons are registers selected by last cycle's shifts: every cycle slots 0 .. ENTRY of
    one queue are compared with slots 0 .. ENTRY of the other (nine comparisons a pair, each of
    ``pipeline.CHUNK``-bit slices), and since an element arrives at slot ``ENTRY`` = 2 or above,
    slots 0 and 1 always held an element compared a cycle before; the loop holds no comparison.
    Queues load slots below ``ENTRY`` only from the slot above, and free slots from ``ENTRY`` up
    load the input lane every cycle, so no data enable depends on an input's handshake. Whether every
    queue can step, and each input's ready, are registers too, computed from the queues' next
    state (for each value of the final-step bit and of each handshake, selected by them), so a
    step is one LUT from flip-flops and the output's ready; the timing is the same as if they
    were computed from the state itself.

    Parameters
    ----------
    width, key_bits, index_bits : int
        As :class:`BitonicSorter`.

    Attributes
    ----------
    a, b : In(stream of key_beat_layout)
        Sorted lists (see ``streams``: full beats, prefix ``keep``, ascending by ``(key, idx)``,
        a final beat with ``last``; an empty list is one beat with ``keep = 0``). Each input
        may run at most one list ahead of the pair being merged.
    merged : Out(stream of key_beat_layout)
        The sorted union (``max(1, ceil((p + q) / width))`` beats for lists of ``p`` and ``q``
        elements).

    Timing: one output beat (``width`` keys) per cycle; each input up to one beat per cycle;
    ``a.ready``/``b.ready`` are registers (a free slot in all ``width`` queues, at most one list
    ahead). An accepted beat reaches the queue heads three cycles later; a step's
    beat leaves ``latency = 1 + 2 log2(width)`` cycles after it (7 at width 8). Exact cycles:
    ``verif/golden/pointacc.py: merge_cycles``. ``merged.ready`` stalls the output pipeline
    (``pipeline.stage_control``), and a step waits for its first stage.
    """

    def __init__(self, *, width: int = 8, key_bits: int = KeyFormat().key_bits, index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.key_bits = check_int("key_bits", key_bits)
        self.index_bits = check_int("index_bits", index_bits)
        self.depth, self.entry = DEPTH, ENTRY
        self.latency = 1 + 2 * len(merge_layers(width))
        self.name = module_name("merger", width=width, key_bits=key_bits, index_bits=index_bits)
        beat = key_beat_layout(width, key_bits, index_bits)
        super().__init__({
            "a": In(stream.Signature(beat)),
            "b": In(stream.Signature(beat)),
            "merged": Out(stream.Signature(beat)),
        })

    def elaborate(self, platform):
        m = Module()
        w, d = self.width, DEPTH
        eb = self.index_bits + self.key_bits           # an element: Cat(idx, key), ordered as a number
        step, final, cur = Signal(), Signal(), Signal()   # cur: the generation being merged
        ends = Signal()                                   # a step now would be the pair's last
        heads = Signal(name="heads_ready")                # every queue can step (a register)
        # The merge stages' ready is the output skid register's emptiness (a register, known a
        # cycle ahead), so `load[0]` is a register and a step is one LUT from two flip-flops.
        room, room_next = Signal(), Signal()
        # A queue's shift loads its ~400 slot flip-flops: it is SHIFTS LUTs, each for a group of
        # slots and fed by its own copies of `heads_ready` and `load[0]`, so the step reaches the
        # slots through short nets; the merge stages' enables are a copy a lane.
        copies = 2 * w * SHIFTS
        valid, load, enables = stage_control(m, self.latency - 1, step, room, "stage", out_ready_next=room_next,
                                             copies=[copies] + [w] * (self.latency - 2))
        heads_next = Signal(name="heads_ready_next")
        m.d.sync += heads.eq(heads_next)
        steps = [h & e for h, e in zip(replicas(m, heads_next, copies, "heads_ready"), enables[0], strict=True)]
        m.d.comb += [step.eq(heads & load[0]), final.eq(step & ends)]
        with m.If(final):
            m.d.sync += cur.eq(~cur)

        c = [Signal(name=f"a_wins{p}") for p in range(w)]   # pair p: a's head wins (registered)
        q = {}
        for side, port in (("a", self.a), ("b", self.b)):
            ahead = Signal(2, name=f"{side}_ahead")    # lists whose last beat came, not yet merged
            ready = Signal(init=1, name=f"{side}_ready")
            accept = Signal(name=f"{side}_accept")
            m.d.comb += [port.ready.eq(ready), accept.eq(port.valid & ready)]
            done = accept & port.payload.last
            with m.If(done & ~final):
                m.d.sync += ahead.eq(ahead + 1)
            with m.Elif(final & ~done):
                m.d.sync += ahead.eq(ahead - 1)
            lanes = []
            for p in range(w):
                g = [Signal(name=f"{side}{p}_g{k}") for k in range(d)]
                v = [Signal(name=f"{side}{p}_v{k}") for k in range(d)]
                # held[k]: slot k holds an element of the pair being merged; its elements arrive
                # before the next pair's, so one behind the head is still on its way to it.
                held = [Signal(name=f"{side}{p}_held{k}") for k in range(d)]
                m.d.comb += [h.eq(vk & (gk == cur)) for h, vk, gk in zip(held, v, g, strict=True)]
                vis = held[0]                               # the head, of the pair being merged
                wins = c[p] if side == "a" else ~c[w - 1 - p]
                first = (len(q) * w + p) * SHIFTS        # this queue's copies of the step
                lanes.append(dict(e=[Signal(eb, name=f"{side}{p}_e{k}") for k in range(d)], g=g, v=v, vis=vis,
                                  held=held, held_above=Cat(*held[1:]).any(), valid_above=Cat(*v[1:]).any(),
                                  wins=wins, pop=wins & vis,    # pop: if the step happens
                                  shift=~v[0] | step & wins & vis,
                                  shifts=[~v[0] | steps[first + k * SHIFTS // d] & wins & vis for k in range(d)]))
            q[side] = dict(port=port, ahead=ahead, ready=ready, accept=accept, lanes=lanes,
                           tag=cur ^ (ahead != 0))
        a, b = q["a"], q["b"]

        def side_next(x, stepped, fin, acc):
            """``(every queue of x can step, x.ready)`` next cycle, if ``step``, ``final`` and the
            input's handshake are ``stepped``, ``fin`` and ``acc`` (constants): the step condition
            and the ready on the registers' next values, so both are flip-flops. A queue can step
            when its head is of the pair being merged, or its list has ended and it holds no
            element of that pair."""
            done = x["port"].payload.last if acc else 0
            ahead = x["ahead"] + done - fin
            avail, full = [], []
            for p, ln in enumerate(x["lanes"]):
                v, held = ln["v"], ln["held"]
                pop = ln["pop"] if stepped else Const(0, 1)
                shift = ~v[0] | pop
                write = x["port"].payload.keep[p] if acc else Const(0, 1)
                if fin:     # no element of the pair is left: all are of the next, now merged
                    vis, holds = Mux(shift, v[1], v[0]), ln["valid_above"] | v[0] & ~pop | write
                else:       # an element written now is of the pair being merged if no list is ahead
                    vis = Mux(shift, held[1], held[0])
                    holds = ln["held_above"] | held[0] & ~pop | write & (x["ahead"] == 0)
                avail.append(vis | (ahead != 0) & ~holds)
                last = [Mux(shift, v[d - 1], v[d - 2]), v[d - 1] & ~shift]     # slots d - 2, d - 1 next
                full.append(last[1] | write & last[0])
            return Cat(*avail).all(), (ahead != 2) & ~Cat(*full).any()

        # Every case is computed from registers and the late signals (the step, then the final
        # step, then the handshakes) only select.
        cases = ((0, 0), (1, 0), (1, 1))         # (step, final)
        nxt = {side: {(st, fin, acc): side_next(q[side], st, fin, acc) for st, fin in cases for acc in (0, 1)}
               for side in q}

        def chosen(side, i):
            acc = q[side]["accept"]
            pick = {(st, fin): Mux(acc, nxt[side][st, fin, 1][i], nxt[side][st, fin, 0][i]) for st, fin in cases}
            return pick, Mux(step, Mux(ends, pick[1, 1], pick[1, 0]), pick[0, 0])
        both = {k: chosen("a", 0)[0][k] & chosen("b", 0)[0][k] for k in cases}
        m.d.comb += heads_next.eq(Mux(step, Mux(ends, both[1, 1], both[1, 0]), both[0, 0]))
        m.d.sync += [a["ready"].eq(chosen("a", 1)[1]), b["ready"].eq(chosen("b", 1)[1])]

        # The queues: shift (slot k takes slot k + 1) when slot 0 is empty or pops, then an
        # arriving element fills the lowest free slot from ENTRY up (slots below ENTRY are loaded
        # only from the slot above). Slots from ENTRY up that are free after the shift load the
        # port's lane whether or not it is taken (a don't-care until a valid bit says otherwise),
        # so the data enables depend on the step and the valid bits, not on the input's handshake.
        for x in (a, b):
            for p, ln in enumerate(x["lanes"]):
                e, g, v = ln["e"], ln["g"], ln["v"]
                shift = ln["shift"]
                vs = [Mux(shift, v[k + 1], v[k]) for k in range(d - 1)] + [v[d - 1] & ~shift]
                write = x["accept"] & x["port"].payload.keep[p]
                data = Cat(x["port"].payload.lanes[p].idx, x["port"].payload.lanes[p].key)
                for k in range(ENTRY):
                    with m.If(ln["shifts"][k]):
                        m.d.sync += [e[k].eq(e[k + 1]), g[k].eq(g[k + 1])]
                for k in range(ENTRY, d):
                    above = (Mux(v[k + 1], e[k + 1], data), Mux(v[k + 1], g[k + 1], x["tag"])) if k + 1 < d \
                        else (data, x["tag"])
                    with m.If(ln["shifts"][k]):
                        m.d.sync += [e[k].eq(above[0]), g[k].eq(above[1])]
                    with m.Elif(~v[k]):
                        m.d.sync += [e[k].eq(data), g[k].eq(x["tag"])]
                m.d.sync += [v[k].eq(vs[k]) for k in range(d)]
                for k in range(ENTRY, d):
                    with m.If(write & ~vs[k] & (vs[k - 1] if k > ENTRY else 1)):
                        m.d.sync += v[k].eq(1)

        # Pair p: a's queue p against b's queue w-1-p. The next a-wins bit is computed for a step
        # and for none (the step selects): the next heads are slot 0 or slot 1 of each queue.
        # Their comparisons come from registers: `le{p}_ij` (a's slot i <= b's slot j, i, j <=
        # ENTRY) compared last cycle, and that cycle's shifts: slots 0 and 1 now were slots
        # `shifted + (0, 1)` then (an arriving element enters at slot ENTRY = 2 or above), so the
        # loop holds no comparison, only selections.
        winners, emptied = [], []
        for p in range(w):
            la, lb = a["lanes"][p], b["lanes"][w - 1 - p]
            ea, eb_ = la["e"], lb["e"]
            cmp = {(i, j): Signal(name=f"le{p}_{i}{j}") for i in range(ENTRY + 1) for j in range(ENTRY + 1)}
            m.d.sync += [r.eq(~greater(chunk_flags(ea[i], eb_[j]))) for (i, j), r in cmp.items()]
            was = [Signal(name=f"a{p}_shifted"), Signal(name=f"b{w - 1 - p}_shifted")]
            m.d.sync += [was[0].eq(la["shift"]), was[1].eq(lb["shift"])]
            le = {(i, j): _select({(x, y): cmp[i + x, j + y] for x in (0, 1) for y in (0, 1)}, *was)
                  for i in (0, 1) for j in (0, 1)}
            sa, sb = ~la["v"][0] | la["pop"], ~lb["v"][0] | lb["pop"]
            le_step, le_hold = _select(le, sa, sb), _select(le, ~la["v"][0], ~lb["v"][0])
            c_step = [Mux(ends, _a_wins(la, lb, x, sa, sb, cur, 0), _a_wins(la, lb, x, sa, sb, cur, 1)) for x in (0, 1)]
            c_hold = [_a_wins(la, lb, x, ~la["v"][0], ~lb["v"][0], cur, 1) for x in (0, 1)]
            m.d.sync += c[p].eq(Mux(step, Mux(le_step, c_step[1], c_step[0]), Mux(le_hold, c_hold[1], c_hold[0])))
            for ln in (la, lb):             # the step leaves no element of the pair in the queue
                emptied.append(~ln["held_above"] & (~ln["held"][0] | ln["wins"]))
            winners.append(Mux(c[p], Cat(ea[0], ~la["vis"]), Cat(eb_[0], ~lb["vis"])))

        # The final step of a pair: both lists ended and no queue keeps an element of it (checked
        # on registers, beside the step condition, not on the step's result).
        m.d.comb += ends.eq((a["ahead"] != 0) & (b["ahead"] != 0) & Cat(*emptied).all())

        # Stage 0: the winners (a rotated bitonic sequence, rank form); then the bitonic merge.
        s0 = [Signal(eb + 1, name=f"winner{p}") for p in range(w)]
        s0_last = Signal()
        for p, (r, x) in enumerate(zip(s0, winners, strict=True)):
            with m.If(share(enables[0], copies - 1 - p)):      # shared with b's last queues' shift copies
                m.d.sync += r.eq(x)
        with m.If(load[0]):
            m.d.sync += s0_last.eq(final)
        ranks, last = cas_layers(m, merge_layers(w), s0, s0_last, enables[1:], "merge", register_last=False)
        beat = Signal.like(self.merged.payload, name="beat")
        m.d.comb += beat.last.eq(last)
        ranks_to_lanes(m.d.comb, ranks, beat, self.index_bits, self.key_bits)
        room_r, room_next_r = skid_output(m, self.merged, beat, valid[-1] & room, "merged")
        m.d.comb += [room.eq(room_r), room_next.eq(room_next_r)]
        return m


def _next_head(lane, shift, cur, same):
    """A queue's next head is present and of the pair being merged (``same``) or of the next one,
    after ``shift`` or not."""
    v, g = lane["v"], lane["g"]
    return Mux(shift, v[1] & ((g[1] == cur) == same), v[0] & ((g[0] == cur) == same))


def _select(le, shift_a, shift_b):
    """``le[i, j]`` (a's slot ``i`` <= b's slot ``j``) for the slots that become the heads."""
    return Mux(shift_a, Mux(shift_b, le[1, 1], le[1, 0]), Mux(shift_b, le[0, 1], le[0, 0]))


def _a_wins(la, lb, le, shift_a, shift_b, cur, same):
    """The next a-wins bit of a pair of queues whose next heads compare ``le`` (a's <= b's): an
    absent head (or one not of the pair merged next) loses."""
    ha, hb = _next_head(la, shift_a, cur, same), _next_head(lb, shift_b, cur, same)
    return Mux(ha, ~hb | le, ~hb)
