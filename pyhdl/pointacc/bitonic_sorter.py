from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.network import apply, sort_layers
from pyhdl.pointacc.streams import key_beat_layout, rank
from sw.pointcloud.keys import INDEX_BITS, KeyFormat


def check_width(width):
    check_int("width", width, minimum=2)
    if width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    return width


def compare_exchange(a, b):
    """``(min, max)`` of two elements in rank form."""
    swap = a > b
    return Mux(swap, b, a), Mux(swap, a, b)


def comb_network(m, layers, values, name):
    """``values`` through ``layers`` of compare-exchanges, each layer's outputs a named comb signal
    (so deeper layers refer to wires instead of re-expanding the expressions before them)."""
    v = list(values)
    for n, layer in enumerate(layers):
        v = apply([layer], v, compare_exchange)
        sigs = [Signal(len(x), name=f"{name}_l{n}_{i}") for i, x in enumerate(v)]
        m.d.comb += [s.eq(x) for s, x in zip(sigs, v, strict=True)]
        v = sigs
    return v


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
    """Sorts the lanes of every key beat: Batcher's bitonic network, one register per layer.

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

    Latency ``log2(width) * (log2(width) + 1) / 2`` cycles (6 at width 8: one register after each
    layer of ``width / 2`` compare-exchanges); throughput one beat (``width`` keys) per cycle.
    Each layer register loads when it is empty or its content moves on, so bubbles collapse
    under back-pressure; ``unsorted.ready`` is a combinational function of ``sorted.ready`` and
    the layer valid bits.
    """

    def __init__(self, *, width: int = 8, key_bits: int = KeyFormat().key_bits, index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.key_bits = check_int("key_bits", key_bits)
        self.index_bits = check_int("index_bits", index_bits)
        self.layers = sort_layers(width)
        self.latency = len(self.layers)
        self.name = module_name("bitonic_sorter", width=width, key_bits=key_bits, index_bits=index_bits)
        beat = key_beat_layout(width, key_bits, index_bits)
        super().__init__({
            "unsorted": In(stream.Signature(beat)),
            "sorted": Out(stream.Signature(beat)),
        })

    def elaborate(self, platform):
        m = Module()
        n_layers = len(self.layers)
        elem = self.index_bits + self.key_bits + 1
        valid = [Signal(name=f"layer{s}_valid") for s in range(n_layers)]
        last = [Signal(name=f"layer{s}_last") for s in range(n_layers)]
        load = [Signal(name=f"layer{s}_load") for s in range(n_layers)]
        regs = [[Signal(elem, name=f"layer{s}_lane{i}") for i in range(self.width)] for s in range(n_layers)]

        for s in range(n_layers):
            downstream_ready = self.sorted.ready if s == n_layers - 1 else load[s + 1]
            m.d.comb += load[s].eq(~valid[s] | downstream_ready)
        m.d.comb += self.unsorted.ready.eq(load[0])

        prev, prev_valid, prev_last = lanes_to_ranks(self.unsorted.payload), self.unsorted.valid, \
            self.unsorted.payload.last
        for s, layer in enumerate(self.layers):
            out = apply([layer], prev, compare_exchange)
            with m.If(load[s]):
                m.d.sync += [valid[s].eq(prev_valid), last[s].eq(prev_last)]
                m.d.sync += [r.eq(v) for r, v in zip(regs[s], out, strict=True)]
            prev, prev_valid, prev_last = regs[s], valid[s], last[s]

        m.d.comb += [self.sorted.valid.eq(prev_valid), self.sorted.payload.last.eq(prev_last)]
        ranks_to_lanes(m.d.comb, prev, self.sorted.payload, self.index_bits, self.key_bits)
        return m
