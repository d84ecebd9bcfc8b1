from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int, module_name
from pyhdl.pointacc.bitonic_sorter import check_width
from pyhdl.pointacc.streams import check_key_format, coord_beat_layout, key_beat_layout
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, INDEX_BITS


class KeyPack(wiring.Component):
    """Packs point coordinates into sortable keys (``sw.pointcloud.keys``), ``width`` per cycle.

    ``key = batch | x + B | y + B | z + B`` from high to low, ``B = 2**(coord_bits - 1)``: adding
    the bias to a ``coord_bits``-bit two's-complement coordinate is inverting its sign bit, so
    the key is wiring and inverters; unsigned key order is ``(batch, x, y, z)`` order. With
    ``downsample`` high the keys are parity-last (``KeyFormat.down``: each field's lowest bit moved
    to the bottom), the order a stride-2 run sorts by: a 2:1 select of two wirings.

    Parameters
    ----------
    width, coord_bits, batch_bits, index_bits : int
        Lanes per beat (a power of two), key format, index width.

    Attributes
    ----------
    coords : In(stream of coord_beat_layout)
    keys : Out(stream of key_beat_layout)
        The same beats with each lane's coordinates replaced by its key; ``idx``, ``keep`` and
        ``last`` pass through.
    downsample : In(1)
        Parity-last keys (hold it steady while beats flow).

    Latency one cycle (a registered output), throughput one beat per cycle; ``coords.ready``
    is ``keys.ready`` or an empty output register.
    """

    latency = 1

    def __init__(self, *, width: int = 8, coord_bits: int = COORD_BITS, batch_bits: int = BATCH_BITS,
                 index_bits: int = INDEX_BITS):
        self.width = check_width(width)
        self.format = check_key_format(coord_bits, batch_bits)
        self.coord_bits, self.batch_bits = coord_bits, batch_bits
        self.index_bits = check_int("index_bits", index_bits)
        self.name = module_name("key_pack", width=width, coord_bits=coord_bits, batch_bits=batch_bits,
                                index_bits=index_bits)
        super().__init__({
            "coords": In(stream.Signature(coord_beat_layout(width, coord_bits, batch_bits, index_bits))),
            "keys": Out(stream.Signature(key_beat_layout(width, self.format.key_bits, index_bits))),
            "downsample": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.coord_bits
        src, dst = self.coords, self.keys
        advance = ~dst.valid | dst.ready
        m.d.comb += src.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [dst.valid.eq(src.valid), dst.payload.keep.eq(src.payload.keep),
                         dst.payload.last.eq(src.payload.last)]
            for i in range(self.width):
                p = src.payload.lanes[i]
                biased = [Cat(v[:c - 1], ~v[c - 1]) for v in (p.z, p.y, p.x)]
                key = Cat(*biased, p.batch)
                down = Cat(*(f[0] for f in biased), *(f[1:] for f in biased), p.batch)
                m.d.sync += [dst.payload.lanes[i].key.eq(Mux(self.downsample, down, key)),
                             dst.payload.lanes[i].idx.eq(p.idx)]
        return m
