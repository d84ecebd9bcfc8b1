from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.network import sort_layers
from pyhdl.pointacc.pipeline import chunk_flags, greater, share, stage_control
from pyhdl.pointacc.streams import key_beat_layout, rank
from sw.pointcloud.keys import INDEX_BITS, KeyFormat


def check_width(width):
    check_int("width", width, minimum=2)
    if width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    return width


def cas_layers(m, layers, values, last, load, name, register_last=True, swap_copies=1):
    """``values`` (and a ``last`` bit) through ``layers`` of compare-exchanges, two register
    stages a layer loaded by ``load[2 l]`` and ``load[2 l + 1]``: elements and the
    ``pipeline.chunk_flags`` of every pair, then the exchanged elements. Returns the registers of
    the final stage and its ``last`` (without ``register_last``, the values that stage would
    load: the caller registers them). A stage's load may be a list of ``pyhdl.replicas``,
    dealt round the lanes; then ``swap_copies`` > 1 keeps that many copies of each pair's flag
    registers (``keep``), each deciding the exchange of a share of the element bits, so no
    swap decision drives every multiplexer of a pair."""
    if swap_copies > 1 and not all(isinstance(x, list) for x in load):
        raise ValueError("swap_copies > 1 needs the stages' loads as lists of replicas")
    v = list(values)
    for n, layer in enumerate(layers):
        held = [Signal(len(x), name=f"{name}{n}_in{i}") for i, x in enumerate(v)]
        held_last = Signal(name=f"{name}{n}_in_last")
        flags = {}
        if isinstance(load[2 * n], list):       # replicas: lane i (and pair lo) takes copy i
            for i, (h, x) in enumerate(zip(held, v, strict=True)):
                with m.If(share(load[2 * n], i)):
                    m.d.sync += h.eq(x)
            with m.If(share(load[2 * n], 0)):
                m.d.sync += held_last.eq(last)
            for lo, hi in layer:
                for k in range(swap_copies):
                    sfx, attrs = (f"_copy{k}", {"keep": 1}) if swap_copies > 1 else ("", {})
                    for c, (gt, eq) in enumerate(chunk_flags(v[lo], v[hi])):
                        g = Signal(name=f"{name}{n}_gt{lo}_{c}{sfx}", attrs=attrs)
                        e = Signal(name=f"{name}{n}_eq{lo}_{c}{sfx}", attrs=attrs)
                        with m.If(share(load[2 * n], lo)):
                            m.d.sync += [g.eq(gt), e.eq(eq)]
                        flags.setdefault((lo, k), []).append((g, e))
        else:
            with m.If(load[2 * n]):
                m.d.sync += [h.eq(x) for h, x in zip(held, v, strict=True)]
                m.d.sync += held_last.eq(last)
                for lo, hi in layer:
                    for c, (gt, eq) in enumerate(chunk_flags(v[lo], v[hi])):
                        g, e = Signal(name=f"{name}{n}_gt{lo}_{c}"), Signal(name=f"{name}{n}_eq{lo}_{c}")
                        m.d.sync += [g.eq(gt), e.eq(eq)]
                        flags.setdefault((lo, 0), []).append((g, e))
        out = list(held)
        for lo, hi in layer:
            if swap_copies == 1:
                swap = greater(flags[lo, 0])
                out[lo], out[hi] = Mux(swap, held[hi], held[lo]), Mux(swap, held[lo], held[hi])
                continue
            cuts = [len(held[lo]) * k // swap_copies for k in range(swap_copies + 1)]
            parts = [(greater(flags[lo, k]), slice(cuts[k], cuts[k + 1])) for k in range(swap_copies)]
            out[lo] = Cat(*(Mux(sw, held[hi][b], held[lo][b]) for sw, b in parts))
            out[hi] = Cat(*(Mux(sw, held[lo][b], held[hi][b]) for sw, b in parts))
        if not register_last and n == len(layers) - 1:
            return out, held_last
        v = [Signal(len(x), name=f"{name}{n}_lane{i}") for i, x in enumerate(held)]
        last = Signal(name=f"{name}{n}_last")
        if isinstance(load[2 * n + 1], list):
            for i, (r, x) in enumerate(zip(v, out, strict=True)):
                with m.If(share(load[2 * n + 1], i)):
                    m.d.sync += r.eq(x)
            with m.If(share(load[2 * n + 1], 0)):
                m.d.sync += last.eq(held_last)
        else:
            with m.If(load[2 * n + 1]):
                m.d.sync += [r.eq(x) for r, x in zip(v, out, strict=True)]
                m.d.sync += last.eq(held_last)
    return v, last


def sorter_latency(width: int) -> int:
    """Cycles a beat spends in :class:`BitonicSorter` of ``width`` lanes: two per layer."""
    return 2 * len(sort_layers(width))


def lanes_to_ranks(beat):
    return [rank(beat.lanes[i], beat.keep[i]) for i in range(len(beat.lanes))]


def ranks_to_lanes(m, ranks, beat, index_bits, key_bits):
    """Drive ``beat``'s lanes and keep from elements in rank form (``sync`` when ``m`` is a domain)."""
    stmts = []
    for i, r in enumerate(ranks):
        stmts += [beat.lanes[i].idx.eq(r[:index_bits]),
                  beat.lanes[i].key.eq(r[index_bits:index_bits + key_bits]),
                  beat.keep[i].eq(~r[index_bits + key_bits])]
    m += stmts


class BitonicSorter(wiring.Component):
    """Sorts the lanes of every key beat: Batcher's bitonic network, two register stages a layer.

    Parameters
    ----------
    width : int
        Lanes per beat, a power of two (default 8).
    key_bits, index_bits : int
        Key and index widths (defaults: ``sw.pointcloud.keys`` at the spec defaults).

    Attributes
    ----------
    unsorted : In(stream of key_beat_layout)
        Any ``keep`` mask; kept lanes may hold any keys.
    sorted : Out(stream of key_beat_layout)
        The same elements ascending by ``(key, idx)``, kept lanes first (``keep`` becomes a
        prefix); ``last`` passes through. A beat of ``width`` keys is one sorted run.

    Each layer of ``width / 2`` compare-exchanges is two stages (``pipeline``): the first
    registers the elements and the chunk comparisons of every pair, the second combines them and
    registers the exchanged elements. Latency ``latency = log2(width) (log2(width) + 1)`` cycles
    (12 at width 8); throughput one beat (``width`` keys) per cycle. ``unsorted.ready`` is one LUT
    of ``sorted.ready`` and two stage valid bits (``pipeline.stage_control``).
    """

    def __init__(self, *, width: int = 8, key_bits: int = KeyFormat().key_bits, index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.key_bits = check_int("key_bits", key_bits)
        self.index_bits = check_int("index_bits", index_bits)
        self.layers = sort_layers(width)
        self.latency = sorter_latency(width)
        self.name = module_name("bitonic_sorter", width=width, key_bits=key_bits, index_bits=index_bits)
        beat = key_beat_layout(width, key_bits, index_bits)
        super().__init__({
            "unsorted": In(stream.Signature(beat)),
            "sorted": Out(stream.Signature(beat)),
        })

    def elaborate(self, platform):
        m = Module()
        valid, load = stage_control(m, self.latency, self.unsorted.valid, self.sorted.ready, "stage")
        m.d.comb += self.unsorted.ready.eq(load[0])
        ranks, last = cas_layers(m, self.layers, lanes_to_ranks(self.unsorted.payload), self.unsorted.payload.last,
                                 load, "layer")
        m.d.comb += [self.sorted.valid.eq(valid[-1]), self.sorted.payload.last.eq(last)]
        ranks_to_lanes(m.d.comb, ranks, self.sorted.payload, self.index_bits, self.key_bits)
        return m
