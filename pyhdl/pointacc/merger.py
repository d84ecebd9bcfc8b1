from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.bitonic_sorter import cas_layers, check_width, ranks_to_lanes
from pyhdl.pointacc.network import merge_layers
from pyhdl.pointacc.pipeline import stage_control
from pyhdl.pointacc.streams import key_beat_layout
from sw.pointcloud.keys import INDEX_BITS, KeyFormat

DEPTH = 4   # slots of each lane queue


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
    sequence, are sorted by a bitonic merge (``log2(width)`` layers, two stages each).

    The ``a``-wins bit of each pair is registered and computed one cycle ahead from the two
    front slots of both queues (four comparators a pair), so the loop is a few LUTs; queues
    load slot 0 only from slot 1. An element of a finished list's queues, or of the next pair of
    lists, ranks as infinite; a step needs every head present or its list finished, and emits
    one beat; the step after which no queue holds an element of the pair (both lists ended)
    carries ``last``, and the next pair of lists (already queued behind, one generation bit per
    slot) follows the cycle after.

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
    ``a.ready``/``b.ready`` depend only on registers (a free slot in all ``width`` queues, at
    most one list ahead). An accepted beat reaches the queue heads two cycles later; a step's
    beat leaves ``latency = 1 + 2 log2(width)`` cycles after it (7 at width 8). Exact cycles:
    ``verif/golden/pointacc.py: merge_cycles``. ``merged.ready`` stalls the output pipeline
    (``pipeline.stage_control``), and a step waits for its first stage.
    """

    def __init__(self, *, width: int = 8, key_bits: int = KeyFormat().key_bits, index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.key_bits = check_int("key_bits", key_bits)
        self.index_bits = check_int("index_bits", index_bits)
        self.depth = DEPTH
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
        valid, load = stage_control(m, self.latency, step, self.merged.ready, "stage")

        q = {}
        for side, port in (("a", self.a), ("b", self.b)):
            ahead = Signal(2, name=f"{side}_ahead")    # lists whose last beat came, not yet merged
            e = [[Signal(eb, name=f"{side}{p}_e{k}") for k in range(d)] for p in range(w)]
            g = [[Signal(name=f"{side}{p}_g{k}") for k in range(d)] for p in range(w)]
            v = [[Signal(name=f"{side}{p}_v{k}") for k in range(d)] for p in range(w)]
            vis = [Signal(name=f"{side}{p}_vis") for p in range(w)]   # head of the current generation
            accept = Signal(name=f"{side}_accept")
            m.d.comb += [
                port.ready.eq((ahead != 2) & ~Cat(*(v[p][d - 1] for p in range(w))).any()),
                accept.eq(port.valid & port.ready),
            ]
            m.d.comb += [vis[p].eq(v[p][0] & (g[p][0] == cur)) for p in range(w)]
            # A queue of a finished list can step unless an element is on its way to slot 0.
            avail = [vis[p] | (ahead != 0) & (v[p][0] | ~v[p][1] | (g[p][1] != cur)) for p in range(w)]
            with m.If(accept & port.payload.last & ~final):
                m.d.sync += ahead.eq(ahead + 1)
            with m.Elif(final & ~(accept & port.payload.last)):
                m.d.sync += ahead.eq(ahead - 1)
            q[side] = dict(port=port, ahead=ahead, e=e, g=g, v=v, vis=vis, accept=accept,
                           tag=cur ^ (ahead != 0), avail=Cat(*avail).all())

        a, b = q["a"], q["b"]
        m.d.comb += step.eq(a["avail"] & b["avail"] & load[0])

        with m.If(final):
            m.d.sync += cur.eq(~cur)
        next_cur = cur ^ final

        # Per pair p: a's queue p against b's queue w-1-p; c[p] registered: a's head wins.
        c = [Signal(name=f"a_wins{p}") for p in range(w)]
        winners, emptied = [], []
        for p in range(w):
            lanes = ((a, p), (b, w - 1 - p))
            deq = [step & c[p] & a["vis"][p], step & ~c[p] & b["vis"][w - 1 - p]]
            nxt_vis = []
            shifts = []
            for (x, lane), pop in zip(lanes, deq, strict=True):
                e, g, v = x["e"][lane], x["g"][lane], x["v"][lane]
                shift = ~v[0] | pop
                shifts.append(shift)
                nxt_vis.append(Mux(shift, v[1] & (g[1] == next_cur), v[0] & (g[0] == next_cur)))
                # Shift (slot k takes slot k + 1), then an arriving element fills the lowest free
                # slot from 1 up (slots 1.. are contiguous; slot 0 is loaded only from slot 1).
                vs = [Mux(shift, v[k + 1], v[k]) for k in range(d - 1)] + [v[d - 1] & ~shift]
                write = x["accept"] & x["port"].payload.keep[lane]
                data = Cat(x["port"].payload.lanes[lane].idx, x["port"].payload.lanes[lane].key)
                with m.If(shift):
                    m.d.sync += [e[k].eq(e[k + 1]) for k in range(d - 1)]
                    m.d.sync += [g[k].eq(g[k + 1]) for k in range(d - 1)]
                m.d.sync += [v[k].eq(vs[k]) for k in range(d)]
                for k in range(1, d):
                    with m.If(write & ~vs[k] & (vs[k - 1] if k > 1 else 1)):
                        m.d.sync += [e[k].eq(data), g[k].eq(x["tag"]), v[k].eq(1)]
            # The next heads are slot 0 or slot 1 of each queue: four comparisons ahead.
            ea, eb_ = a["e"][p], b["e"][w - 1 - p]
            raw = Mux(shifts[0], Mux(shifts[1], ea[1] <= eb_[1], ea[1] <= eb_[0]),
                      Mux(shifts[1], ea[0] <= eb_[1], ea[0] <= eb_[0]))
            m.d.sync += c[p].eq(Mux(nxt_vis[0], ~nxt_vis[1] | raw, ~nxt_vis[1]))
            for (x, lane), wins in zip(lanes, (c[p], ~c[p]), strict=True):
                held = [x["v"][lane][k] & (x["g"][lane][k] == cur) for k in range(d)]
                one = Cat(*held).any() & ~Cat(*held[1:]).any()      # only the head (slots in order)
                emptied.append(~Cat(*held).any() | (one & wins))
            winners.append(Mux(c[p], Cat(ea[0], ~a["vis"][p]), Cat(eb_[0], ~b["vis"][w - 1 - p])))

        # The final step of a pair: both lists ended and no queue keeps an element of it (checked
        # on registers, beside the step condition, not on the step's result).
        m.d.comb += final.eq(step & (a["ahead"] != 0) & (b["ahead"] != 0) & Cat(*emptied).all())

        # Stage 0: the winners (a rotated bitonic sequence, rank form); then the bitonic merge.
        s0 = [Signal(eb + 1, name=f"winner{p}") for p in range(w)]
        s0_last = Signal()
        with m.If(load[0]):
            m.d.sync += [r.eq(x) for r, x in zip(s0, winners, strict=True)]
            m.d.sync += s0_last.eq(final)
        ranks, last = cas_layers(m, merge_layers(w), s0, s0_last, load[1:], "merge")
        out = self.merged
        m.d.comb += [out.valid.eq(valid[-1]), out.payload.last.eq(last)]
        ranks_to_lanes(m.d.comb, ranks, out.payload, self.index_bits, self.key_bits)
        return m
