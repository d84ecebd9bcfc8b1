from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int


def run_beat_layout(lanes: data.ArrayLayout, width: int, addr_bits: int, list_bits: int) -> data.StructLayout:
    """A beat read out of a run memory: the word's ``lanes``, the list framing (``keep``, ``last``),
    the list's number and the word's address."""
    return data.StructLayout({"lanes": lanes, "keep": width, "last": 1, "list": list_bits, "addr": addr_bits})


class RunReader(wiring.Component):
    """Streams lists of consecutive words out of a memory of beats (one word a beat of ``width``
    lanes), one beat a cycle.

    The memory holds ``n_beats`` words: the elements of one list of points, full beats but the
    last, whose kept lanes are ``last_keep``. After ``start`` it streams ``n_lists`` lists; list
    ``j`` is the run of up to ``run_beats`` words from address ``first + j * stride`` (cut at
    ``n_beats``; a run that starts at or beyond ``n_beats`` is an empty list, one beat with
    ``keep = 0``). ``stride = 0`` streams the same run ``n_lists`` times. The configuration inputs
    are sampled with ``start`` and may change afterwards.

    Parameters
    ----------
    lanes : data.ArrayLayout
        The memory's word: ``width`` lanes.
    depth : int
        Words of the memory.
    max_lists : int
        Most lists a ``start`` may ask for.

    Attributes
    ----------
    read : In(memory.ReadPort.Signature)
        To a synchronous read port of the memory (latency one cycle).
    start : In(1)
        Begin streaming (ignored while a stream is under way).
    first, stride, run_beats, n_beats, n_lists, last_keep : In
        The lists, as above.
    beats : Out(stream of run_beat_layout)
        The words with ``keep``, ``last`` (the final beat of each list), ``list`` = ``j`` and
        ``addr``.
    busy : Out(1)
        Lists left to read or beats not yet taken.

    Timing: reads are issued ahead into a ``FIFO_DEPTH``-entry FIFO whose output is a register
    (``SyncFIFOBuffered``: the beat leaves the reader from flip-flops, not from a LUT-RAM read),
    so the first beat is offered ``LATENCY`` cycles after the edge that samples ``start`` (the
    read, the FIFO's write, its output register) and a beat every cycle after that as long as
    ``beats.ready`` is high.
    """

    FIFO_DEPTH = 4
    LATENCY = 3      # start sampled on edge e -> first beat offered in the cycle after edge e + 3

    def __init__(self, lanes: data.ArrayLayout, *, depth: int, max_lists: int):
        if not isinstance(lanes, data.ArrayLayout):
            raise TypeError(f"lanes must be a data.ArrayLayout, not {lanes!r}")
        self.width = lanes.length
        self.depth = check_int("depth", depth)
        self.max_lists = check_int("max_lists", max_lists)
        self.addr_bits = bits_for(depth - 1)
        self.count_bits = bits_for(depth)
        self.list_bits = bits_for(max_lists - 1)
        self.layout = run_beat_layout(lanes, self.width, self.addr_bits, self.list_bits)
        super().__init__({
            "read": In(memory.ReadPort.Signature(addr_width=self.addr_bits, shape=lanes)),
            "start": In(1),
            "first": In(self.count_bits),
            "stride": In(self.count_bits + 1),
            "run_beats": In(self.count_bits),
            "n_beats": In(self.count_bits),
            "n_lists": In(bits_for(max_lists)),
            "last_keep": In(self.width),
            "beats": Out(stream.Signature(self.layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.layout.size, depth=self.FIFO_DEPTH)

        running = Signal()
        base = Signal(self.count_bits + 2)            # first word of the current list
        beat = Signal(self.count_bits)                # beat within the current list
        lst = Signal(self.list_bits)
        stride, run_beats, n_beats = Signal.like(self.stride), Signal.like(self.run_beats), Signal.like(self.n_beats)
        n_lists, last_keep = Signal.like(self.n_lists), Signal.like(self.last_keep)

        # One read in flight at most (latency 1): issue while the FIFO has room for it.
        pending = Signal()
        issue = running & (fifo.level + pending < self.FIFO_DEPTH)
        addr = base + beat
        empty = base >= n_beats
        end = empty | (beat == run_beats - 1) | (addr == n_beats - 1)
        meta = Signal(data.StructLayout({"keep": w, "last": 1, "list": self.list_bits, "addr": self.addr_bits}))
        m.d.comb += [self.read.addr.eq(addr), self.read.en.eq(issue)]
        m.d.sync += pending.eq(issue)
        with m.If(issue):
            m.d.sync += [meta.keep.eq(Mux(empty, 0, Mux(addr == n_beats - 1, last_keep, (1 << w) - 1))),
                         meta.last.eq(end), meta.list.eq(lst), meta.addr.eq(addr)]
            with m.If(end):
                m.d.sync += [beat.eq(0), base.eq(base + stride), lst.eq(lst + 1)]
                with m.If(lst == n_lists - 1):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [running.eq(self.n_lists != 0), base.eq(self.first), beat.eq(0), lst.eq(0),
                         stride.eq(self.stride), run_beats.eq(self.run_beats), n_beats.eq(self.n_beats),
                         n_lists.eq(self.n_lists), last_keep.eq(self.last_keep)]

        m.d.comb += [
            fifo.w_en.eq(pending),
            fifo.w_data.eq(Cat(self.read.data, meta.keep, meta.last, meta.list, meta.addr)),
            self.beats.valid.eq(fifo.r_rdy),
            self.beats.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.beats.ready),
            self.busy.eq(running | pending | (fifo.level != 0)),     # level: the output register's beat included
        ]
        return m
