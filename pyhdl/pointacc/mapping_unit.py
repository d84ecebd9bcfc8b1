# amaranth: UnusedElaboratable=no
# (blocks() makes block objects for their timing constants only; elaborate makes its own.)
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int, module_name
from pyhdl.pointacc.bitonic_sorter import BitonicSorter, check_width
from pyhdl.pointacc.downsampler import Downsampler
from pyhdl.pointacc.intersect import Intersect
from pyhdl.pointacc.key_pack import KeyPack
from pyhdl.pointacc.merger import Merger
from pyhdl.pointacc.run_reader import RunReader
from pyhdl.pointacc.streams import check_key_format, key_lane_layout, offset_layout, pair_beat_layout
from pyhdl.replicas import replicas
from sw.pointcloud.kernel_map import kernel_offsets
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS


class Region(enum.IntEnum, shape=1):
    """The ``region`` field of a load address (:func:`load_address_layout`)."""

    COORDS = 0        # offset: coordinate beat (points offset * width ...), data: coord_word_layout
    CONFIG = 1        # offset: a Config register


class Config(enum.IntEnum):
    """The run registers: offsets in :attr:`Region.CONFIG`."""

    N_POINTS = 0
    STRIDE = 1        # 1: submanifold map (the output points are the input points); 2: downsampling


class Status(enum.IntEnum, shape=1):
    """The ``kind`` field of a status address (:func:`status_address_layout`)."""

    UNIT = 0          # index: a UnitStatus counter
    PAIRS = 1         # index: kernel offset k; pairs of offset k in the last run


class UnitStatus(enum.IntEnum):
    """The unit's own counters: the ``index`` under :attr:`Status.UNIT`."""

    CYCLES = 0        # start -> done
    SORT_CYCLES = 1   # start -> the sorted list complete (key packing, sort, merge passes, duplicate check)
    STALLS = 2        # cycles with a pair beat offered and not taken
    ERROR = 3         # sticky: duplicate input coordinates
    N_POINTS = 4      # the N_POINTS register
    N_OUT = 5         # output points of the run (N_POINTS at stride 1; the distinct stride-2 points)


class Phase(enum.Enum, shape=3):
    IDLE = 0
    SORT = 1          # coordinates -> keys -> sorted beats (runs of one beat)
    MERGE = 2         # one merge pass: runs of R beats -> runs of 2R
    INTERSECT = 3     # every kernel offset: sorted keys ∩ shifted sorted output keys -> pairs
    DOWNSAMPLE = 4    # stride 2: the sorted list -> its distinct quantised keys (the output points)
    CHECK = 5         # the sorted list written: wait for the duplicate check of its last beat


def coord_word_layout(width: int, coord_bits: int, batch_bits: int) -> data.ArrayLayout:
    """A coordinate-memory word: ``width`` points ``{batch, x, y, z}`` (coordinates signed)."""
    return data.ArrayLayout(data.StructLayout({"batch": batch_bits, "x": signed(coord_bits), "y": signed(coord_bits),
                                               "z": signed(coord_bits)}), width)


def load_address_layout(offset_bits: int) -> data.StructLayout:
    return data.StructLayout({"offset": offset_bits, "region": Region})


def status_address_layout(index_bits: int) -> data.StructLayout:
    return data.StructLayout({"index": index_bits, "kind": Status})


class MappingUnit(wiring.Component):
    """The PointAcc mapping unit: builds the kernel map of up to ``max_points`` points, submanifold
    (``STRIDE = 1``) or downsampling (``STRIDE = 2``: the output points are generated too)
    (docs/spec.md §5.7).

    The host writes the points (``width`` a word) and ``N_POINTS`` through ``load`` and pulses
    ``start``. The unit then runs four kinds of phase, one after another, each streaming one of
    its memories through one block (:class:`Phase`):

    1. sort: the coordinate memory through :class:`KeyPack` and :class:`BitonicSorter` into run
       memory 0 (``idx`` = the point's row): sorted runs of one beat;
    2. merge passes: the runs of one run memory, in pairs, through :class:`Merger` into the
       other (ping-pong), until one run holds every point. The final sorted list is checked for
       duplicate keys, two stages behind the writer (``Phase.CHECK``: the sticky ``ERROR``; the
       unit then stops without intersecting);
    3. stride 2 only, downsample: the sorted list (of parity-last keys, ``KeyFormat.down``: the
       points of one output voxel are neighbours) through :class:`Downsampler` into the other run
       memory: the output points, each once, in key order;
    4. intersect: for each kernel offset ``k`` in order, the sorted keys (``idx`` = row) against
       the output keys shifted by the offset (``idx`` = rank in sorted order; at stride 1 the
       sorted keys themselves), through :class:`Intersect`: one list of pairs per offset on
       ``pairs``.

    So ``pairs`` carries ``(in_idx, out_idx)`` with ``in_idx`` the input row and ``out_idx`` the
    output point's *rank* (its position in key order), ascending by ``out_idx`` within each
    offset: the kernel map of the output coordinates in sorted order. ``sorted`` reads the output
    list back (rank ``r`` is lane ``r % width`` of word ``r // width``; at stride 1 its ``idx`` is
    the row, so the host renumbers ranks to rows; at stride 2 its keys are the output points, in
    the order ``kernel_map`` lists them) (docs/spec.md §5.7).

    Each phase begins ``PHASE_LATENCY`` cycles before its first beat enters its block (a launch
    register and :class:`RunReader`'s latency) and ends with the block's last output beat; the
    duplicate check adds ``CHECK_LATENCY`` cycles after the last pass and the pair counters
    ``COUNT_LATENCY`` after the last pair beat, so the run takes exactly the blocks' own times plus
    those gaps (``sw/cyclemodel/pointacc.py``).

    Parameters
    ----------
    max_points : int
        Points the memories hold, a multiple of ``width``.
    width : int
        Keys per cycle (lanes of every block), a power of two (default 8).
    coord_bits, batch_bits : int
        Key format (``sw.pointcloud.keys``).
    kernel_size : int
        Odd; ``kernel_size**3`` offsets (docs/spec.md §5.3).
    counter_width : int
        Bits of the performance counters.

    Attributes
    ----------
    load : Out(memory.WritePort.Signature)
        ``addr`` a ``load_layout`` address (:meth:`address`): coordinate words and ``Config``
        registers; ignored while running.
    start : In(1), done : Out(1), running : Out(1)
        ``start`` (when not running) clears the counters, ``done`` and ``ERROR``; ``done`` is set
        at the end of the run (at once when ``N_POINTS = 0``).
    pairs : Out(stream of pair_beat_layout)
        ``kernel_size**3`` lists, offset by offset.
    sorted : Out(memory.ReadPort.Signature)
        The output list (lanes ``{key, idx}``; stride 1: the sorted input list), one word a read,
        latency one cycle; valid after ``done`` without error.
    status_addr : In(status_layout), status_data : Out(counter_width)
        Counters, combinational (:class:`Status`, :class:`UnitStatus`, :meth:`status_address`).
    error : Out(1)
        Sticky until the next ``start``: the points held duplicate coordinates.
    """

    PHASE_LATENCY = 1 + RunReader.LATENCY + 1   # phase begins -> its first beat taken (launch, reader)
    CHECK_LATENCY = 2     # the sorted list's last beat written -> the next phase begins (duplicate check)
    WRITER_COPIES = 4     # copies of the phase flags that select the beat the writer stores
    COUNT_LATENCY = 1     # the last pair beat taken -> the run's last cycle (its count added)
    COUNT_COPIES = 4      # copies of a pair beat's registered count, each for a share of the counters

    def __init__(self, *, max_points: int = 4096, width: int = 8, coord_bits: int = COORD_BITS,
                 batch_bits: int = BATCH_BITS, kernel_size: int = 3, counter_width: int = 32):
        self.width = check_width(width)
        self.max_points = check_int("max_points", max_points, minimum=width)
        if max_points % width:
            raise ValueError(f"max_points must be a multiple of width = {width}, got {max_points}")
        self.format = check_key_format(coord_bits, batch_bits)
        self.coord_bits, self.batch_bits = coord_bits, batch_bits
        self.kernel_size = check_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.offsets = kernel_offsets(kernel_size)
        if abs(self.offsets).max() >= 1 << coord_bits:
            raise ValueError(f"kernel_size {kernel_size} exceeds the coordinate range of coord_bits = {coord_bits}")
        self.n_offsets = len(self.offsets)
        self.counter_width = check_int("counter_width", counter_width, minimum=bits_for(max_points))
        self.depth = max_points // width
        self.index_bits = bits_for(max_points - 1)
        self.key_bits = self.format.key_bits
        self.coord_layout = coord_word_layout(width, coord_bits, batch_bits)
        self.key_layout = data.ArrayLayout(key_lane_layout(self.key_bits, self.index_bits), width)
        self.addr_bits = bits_for(self.depth - 1)
        self.load_layout = load_address_layout(self.addr_bits)
        self.data_width = max(self.coord_layout.size, bits_for(max_points))
        self.status_layout = status_address_layout(bits_for(max(self.n_offsets, len(UnitStatus)) - 1))
        self.name = module_name("mapping_unit", max_points=max_points, width=width, coord_bits=coord_bits,
                                batch_bits=batch_bits, kernel_size=kernel_size)
        super().__init__({
            "load": Out(memory.WritePort.Signature(addr_width=self.load_layout.size, shape=self.data_width)),
            "start": In(1),
            "done": Out(1),
            "running": Out(1),
            "pairs": Out(stream.Signature(pair_beat_layout(width, self.index_bits))),
            "sorted": Out(memory.ReadPort.Signature(addr_width=self.addr_bits, shape=self.key_layout)),
            "status_addr": In(self.status_layout),
            "status_data": Out(counter_width),
            "error": Out(1),
        })

    def blocks(self) -> dict:
        """The blocks the unit composes, at its parameters (their timing constants for the cycle model)."""
        kf = dict(width=self.width, coord_bits=self.coord_bits, batch_bits=self.batch_bits,
                  index_bits=self.index_bits)
        kb = dict(width=self.width, key_bits=self.key_bits, index_bits=self.index_bits)
        return dict(key_pack=KeyPack(**kf), sorter=BitonicSorter(**kb), merger=Merger(**kb),
                    intersect=Intersect(**kf), downsampler=Downsampler(**kf))

    def address(self, region: int, offset: int = 0) -> int:
        """The load-port address of ``offset`` in ``region`` (for drivers)."""
        return self.load_layout.const({"region": region, "offset": offset}).as_bits()

    def status_address(self, kind: int, index: int = 0) -> int:
        return self.status_layout.const({"kind": kind, "index": index}).as_bits()

    def elaborate(self, platform):
        m = Module()
        w, lw = self.width, self.width.bit_length() - 1
        blocks = self.blocks()
        for name, block in blocks.items():
            m.submodules[name] = block
        keypack, sorter, merger, isect, down = (blocks[n] for n in ("key_pack", "sorter", "merger", "intersect",
                                                                     "downsampler"))
        max_lists = max(self.n_offsets, (self.depth + 1) // 2)
        m.submodules.coord_reader = coord_reader = RunReader(self.coord_layout, depth=self.depth, max_lists=1)
        m.submodules.reader_a = reader_a = RunReader(self.key_layout, depth=self.depth, max_lists=max_lists)
        m.submodules.reader_b = reader_b = RunReader(self.key_layout, depth=self.depth, max_lists=max_lists)

        # Memories: the coordinates, and two run memories the merge passes ping-pong between.
        m.submodules.coords = coords = memory.Memory(shape=self.coord_layout, depth=self.depth, init=[])
        runs = [memory.Memory(shape=self.key_layout, depth=self.depth, init=[]) for _ in range(2)]
        m.submodules.run0, m.submodules.run1 = runs

        # Run registers: the points, the stride, and the output points a downsample pass found.
        n_points, n_out = Signal(bits_for(self.max_points)), Signal(bits_for(self.max_points))
        downsample = Signal()

        def framing(n):
            beats, keep = Signal(bits_for(self.depth)), Signal(w)
            m.d.comb += beats.eq((n + (w - 1)) >> lw)
            with m.Switch(n[:lw] if lw else Const(0, 1)):
                for r in range(w):
                    with m.Case(r):
                        m.d.comb += keep.eq((1 << (r or w)) - 1)
            return beats, keep

        n_beats, last_keep = framing(n_points)
        out_beats, out_last_keep = framing(n_out)
        m.d.comb += [keypack.downsample.eq(downsample), isect.downsample.eq(downsample)]

        # The sequencer's state is `phase`; what reads it reads registered flags instead, loaded
        # from `phase_next`: one copy of each flag for the sequencer and the writer's control
        # (`ctl`), one for the readers and the blocks' handshakes (`rd`), and WRITER_COPIES of the
        # sort and downsample flags, each selecting a share of the ~600-bit beat the writer
        # stores. Before, one decode LUT of `phase` fed both the sequencer's own loop and that
        # select, and the placer put it by the select, far from `phase`.
        phase, phase_next = Signal(Phase), Signal(Phase)
        m.d.comb += phase_next.eq(phase)
        m.d.sync += phase.eq(phase_next)

        def flags(value, name, copies=1):
            return replicas(m, phase_next == value, copies, name)

        ctl = {v: flags(v, f"ctl_{v.name.lower()}")[0]
               for v in (Phase.SORT, Phase.MERGE, Phase.DOWNSAMPLE, Phase.CHECK)}
        rd = {v: flags(v, f"rd_{v.name.lower()}")[0]
              for v in (Phase.SORT, Phase.MERGE, Phase.INTERSECT, Phase.DOWNSAMPLE)}
        launch = Signal()                 # the phase's first cycle: its readers sample `start`
        src = Signal()                    # the run memory holding the current runs
        log_run = Signal(range(self.addr_bits + 2))     # runs of 2**log_run beats
        run_beats = Signal(bits_for(self.depth))
        m.d.comb += run_beats.eq(1 << log_run)
        error = Signal()
        running = Signal()
        m.d.comb += [self.running.eq(running), self.error.eq(error)]

        # Host load port.
        addr = Signal(self.load_layout)
        m.d.comb += addr.eq(self.load.addr)
        load = self.load.en & ~running
        cw = coords.write_port()
        m.d.comb += [cw.addr.eq(addr.offset), cw.data.eq(self.load.data[:self.coord_layout.size]),
                     cw.en.eq(load & (addr.region == Region.COORDS))]
        with m.If(load & (addr.region == Region.CONFIG) & (addr.offset == Config.N_POINTS)):
            m.d.sync += n_points.eq(self.load.data)
        with m.If(load & (addr.region == Region.CONFIG) & (addr.offset == Config.STRIDE)):
            m.d.sync += downsample.eq(self.load.data == 2)

        # Readers. In a stride-2 intersection, reader b streams the output list from the other
        # run memory.
        merging, intersecting, downsampling = rd[Phase.MERGE], rd[Phase.INTERSECT], rd[Phase.DOWNSAMPLE]
        outputs_apart = downsample & intersecting
        for r in (coord_reader, reader_a):
            m.d.comb += [r.n_beats.eq(n_beats), r.last_keep.eq(last_keep)]
        m.d.comb += [reader_b.n_beats.eq(Mux(outputs_apart, out_beats, n_beats)),
                     reader_b.last_keep.eq(Mux(outputs_apart, out_last_keep, last_keep))]
        cr = coords.read_port()
        m.d.comb += [cr.addr.eq(coord_reader.read.addr), cr.en.eq(coord_reader.read.en),
                     coord_reader.read.data.eq(cr.data)]
        m.d.comb += [coord_reader.start.eq(launch & rd[Phase.SORT]), coord_reader.first.eq(0),
                     coord_reader.stride.eq(0), coord_reader.run_beats.eq(n_beats), coord_reader.n_lists.eq(1)]
        for reader, side in ((reader_a, 0), (reader_b, 1)):
            ports = [run.read_port() for run in runs]
            for p in ports:
                m.d.comb += [p.addr.eq(reader.read.addr), p.en.eq(reader.read.en)]
            mem = src ^ outputs_apart if side else src
            starts = merging | intersecting | (downsampling if side == 0 else 0)
            m.d.comb += [reader.read.data.eq(Mux(mem, ports[1].data, ports[0].data)),
                         reader.start.eq(launch & starts), reader.run_beats.eq(run_beats)]
            with m.If(merging):                    # list j: runs 2j and 2j + 1
                m.d.comb += [reader.first.eq(run_beats if side else 0), reader.stride.eq(run_beats << 1),
                             reader.n_lists.eq((n_beats + (run_beats << 1) - 1) >> (log_run + 1))]
            with m.Elif(downsampling):             # the sorted list, once
                m.d.comb += [reader.first.eq(0), reader.stride.eq(0), reader.n_lists.eq(1)]
            with m.Else():                         # every offset: the whole sorted (output) list
                m.d.comb += [reader.first.eq(0), reader.stride.eq(0), reader.n_lists.eq(self.n_offsets)]

        # Sort: coordinates (idx = row) -> keys -> sorted beats.
        cb = coord_reader.beats
        m.d.comb += [keypack.coords.valid.eq(cb.valid), cb.ready.eq(keypack.coords.ready),
                     keypack.coords.payload.keep.eq(cb.payload.keep), keypack.coords.payload.last.eq(cb.payload.last)]
        for i in range(w):
            src_lane, dst_lane = cb.payload.lanes[i], keypack.coords.payload.lanes[i]
            m.d.comb += [dst_lane.batch.eq(src_lane.batch), dst_lane.x.eq(src_lane.x), dst_lane.y.eq(src_lane.y),
                         dst_lane.z.eq(src_lane.z), dst_lane.idx.eq(Cat(Const(i, lw), cb.payload.addr))]
        wiring.connect(m, keypack.keys, sorter.unsorted)

        # Merge passes (reader a: runs 2j, b: runs 2j + 1) and intersection (a: input keys,
        # b: output keys, idx = rank, shifted by offset `list`).
        a, b = reader_a.beats, reader_b.beats
        for beat, dst in ((a, merger.a), (b, merger.b), (a, isect.inputs), (a, down.keys)):
            m.d.comb += [dst.payload.lanes.eq(beat.payload.lanes), dst.payload.keep.eq(beat.payload.keep),
                         dst.payload.last.eq(beat.payload.last)]
        offset = Signal(offset_layout(self.coord_bits))
        with m.Switch(b.payload.list):
            for k, (dx, dy, dz) in enumerate(self.offsets.tolist()):
                with m.Case(k):
                    m.d.comb += [offset.x.eq(dx), offset.y.eq(dy), offset.z.eq(dz)]
        q = isect.outputs.payload
        m.d.comb += [q.keep.eq(b.payload.keep), q.last.eq(b.payload.last), q.offset.eq(offset)]
        for i in range(w):
            m.d.comb += [q.lanes[i].key.eq(b.payload.lanes[i].key),
                         q.lanes[i].idx.eq(Cat(Const(i, lw), b.payload.addr))]
        m.d.comb += [
            merger.a.valid.eq(a.valid & merging), merger.b.valid.eq(b.valid & merging),
            isect.inputs.valid.eq(a.valid & intersecting), isect.outputs.valid.eq(b.valid & intersecting),
            down.keys.valid.eq(a.valid & downsampling),
            a.ready.eq(Mux(merging, merger.a.ready, Mux(downsampling, down.keys.ready, isect.inputs.ready))),
            b.ready.eq(Mux(merging, merger.b.ready, isect.outputs.ready)),
        ]

        # Writer: sorted beats (sort), merged ones (merge passes) or output points (downsample)
        # into the next run memory.
        sorting, merging, downsampling = ctl[Phase.SORT], ctl[Phase.MERGE], ctl[Phase.DOWNSAMPLE]
        beats = [b.payload.as_value() for b in (sorter.sorted, down.points, merger.merged)]
        select = zip(flags(Phase.SORT, "wsel_sort", self.WRITER_COPIES),
                     flags(Phase.DOWNSAMPLE, "wsel_down", self.WRITER_COPIES), strict=True)
        part = -(-len(beats[0]) // self.WRITER_COPIES)
        wbeat = Cat(*(Mux(s_, beats[0][k * part:(k + 1) * part],
                          Mux(d_, beats[1][k * part:(k + 1) * part], beats[2][k * part:(k + 1) * part]))
                      for k, (s_, d_) in enumerate(select)))
        wbeat = sorter.sorted.payload.shape()(wbeat)
        write = Mux(sorting, sorter.sorted.valid, Mux(downsampling, down.points.valid, merger.merged.valid))
        m.d.comb += [sorter.sorted.ready.eq(1), merger.merged.ready.eq(1), down.points.ready.eq(1)]
        wcount = Signal(bits_for(self.depth))
        dest = Mux(sorting, 0, ~src)
        for k, run in enumerate(runs):
            wp = run.write_port()
            m.d.comb += [wp.addr.eq(wcount), wp.data.eq(wbeat.lanes), wp.en.eq(write & (dest == k))]
        with m.If(write):
            m.d.sync += wcount.eq(wcount + 1)
        with m.If(write & downsampling):
            m.d.sync += n_out.eq(n_out + sum(wbeat.keep[i] for i in range(w)))
        written = write & Mux(downsampling, wbeat.last, wcount == n_beats - 1)     # the pass's last beat

        # Duplicates: equal neighbours in the final sorted list (the pass that leaves one run),
        # two stages behind the writer (the written beat registered, then each neighbour pair's
        # equality), so no key comparison reaches the sequencer: the pass ends in Phase.CHECK,
        # which waits for the last beat's equalities (CHECK_LATENCY cycles in all).
        # `final` is registered, from the state of the cycle before: `log_run`, the phase and
        # `n_beats` change only in a cycle with no write in it nor in the next (at `start`, or with
        # a pass's last beat), and only a write reads `final`.
        final = Signal()
        m.d.sync += final.eq(Mux(sorting, n_beats == 1, merging & ((run_beats << 1) >= n_beats)))
        have_prev = Signal()
        chk_on, chk_first, chk_keep = Signal(), Signal(), Signal(w)
        chk_keys = [Signal(self.key_bits, name=f"chk_key{i}") for i in range(w)]
        m.d.sync += [chk_on.eq(write & final), chk_first.eq(~have_prev), chk_keep.eq(wbeat.keep),
                     *(k.eq(wbeat.lanes[i].key) for i, k in enumerate(chk_keys))]
        with m.If(write):
            m.d.sync += have_prev.eq(1)
        prev_key = Signal(self.key_bits)          # the last key of the beat checked before
        with m.If(chk_on):
            m.d.sync += prev_key.eq(chk_keys[w - 1])
        same = [chk_keep[i + 1] & (chk_keys[i] == chk_keys[i + 1]) for i in range(w - 1)]
        same.append(~chk_first & chk_keep[0] & (prev_key == chk_keys[0]))
        same_r = Signal(w)
        m.d.sync += same_r.eq(Mux(chk_on, Cat(*same), 0))
        dup = same_r.any()
        with m.If(dup):
            m.d.sync += error.eq(1)
        checking, check_wait = ctl[Phase.CHECK], Signal()

        # Output: the intersection's pairs, offset by offset.
        out = self.pairs
        wiring.connect(m, isect.pairs, wiring.flipped(out))
        k_out = Signal(range(self.n_offsets))
        taken = out.valid & out.ready
        finished = taken & out.payload.last & (k_out == self.n_offsets - 1)

        # Sequencing.
        m.d.sync += launch.eq(0)
        with m.If(self.start & ~running):
            m.d.sync += [error.eq(0), self.done.eq(n_points == 0), running.eq(n_points != 0), k_out.eq(0),
                         n_out.eq(0)]
            with m.If(n_points != 0):
                m.d.comb += phase_next.eq(Phase.SORT)
                m.d.sync += [launch.eq(1), wcount.eq(0), have_prev.eq(0), log_run.eq(0)]
        with m.If(written):
            m.d.sync += [wcount.eq(0), have_prev.eq(0)]
            with m.If(sorting):
                m.d.sync += src.eq(0)
            with m.Elif(merging):
                m.d.sync += [src.eq(~src), log_run.eq(log_run + 1)]
            with m.If(downsampling):                # the input list stays in src, the outputs in ~src
                m.d.comb += phase_next.eq(Phase.INTERSECT)
                m.d.sync += launch.eq(1)
            with m.Elif(final):
                m.d.comb += phase_next.eq(Phase.CHECK)
                m.d.sync += check_wait.eq(1)
            with m.Else():
                m.d.comb += phase_next.eq(Phase.MERGE)
                m.d.sync += launch.eq(1)
        with m.If(checking):                        # cycle 1: the last beat registered; 2: its equalities
            m.d.sync += check_wait.eq(0)
            with m.If(~check_wait & (error | dup)):
                m.d.comb += phase_next.eq(Phase.IDLE)
                m.d.sync += [running.eq(0), self.done.eq(1)]
            with m.Elif(~check_wait):
                m.d.comb += phase_next.eq(Mux(downsample, Phase.DOWNSAMPLE, Phase.INTERSECT))
                m.d.sync += launch.eq(1)
        with m.If(taken & out.payload.last):
            m.d.sync += k_out.eq(k_out + 1)
        # The run's last cycle is the one after its last pair beat: that beat's count is added then.
        counting_last = Signal()
        m.d.sync += counting_last.eq(finished)
        with m.If(counting_last):
            m.d.comb += phase_next.eq(Phase.IDLE)
            m.d.sync += [running.eq(0), self.done.eq(1)]

        # Counters.
        cycles, sort_cycles, stalls = (Signal(self.counter_width, name=n) for n in ("cycles", "sort_cycles", "stalls"))
        pair_counts = [Signal(self.counter_width, name=f"pairs{k}") for k in range(self.n_offsets)]
        with m.If(self.start & ~running):
            m.d.sync += [cycles.eq(0), sort_cycles.eq(0), stalls.eq(0), *(c.eq(0) for c in pair_counts)]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(sorting | merging | checking | downsampling):
                m.d.sync += sort_cycles.eq(sort_cycles + 1)
            with m.If(out.valid & ~out.ready):
                m.d.sync += stalls.eq(stalls + 1)
        # A taken beat's pair count and its offset's match are registered, the count in
        # COUNT_COPIES copies (each feeding a share of the counters), and added the cycle after.
        # (Only a beat taken in the cycle before counts, so a count never meets the clear at `start`.)
        n_taken = Signal(range(w + 1))
        m.d.comb += n_taken.eq(sum(out.payload.keep[i] for i in range(w)))
        n_copies = replicas(m, n_taken, self.COUNT_COPIES, "pair_beat_count", shape=range(w + 1))
        share = -(-self.n_offsets // self.COUNT_COPIES)
        for k, c in enumerate(pair_counts):
            hit = Signal(name=f"pairs{k}_hit")
            m.d.sync += hit.eq(taken & (k_out == k))
            with m.If(hit):
                m.d.sync += c.eq(c + n_copies[k // share])
        unit = {UnitStatus.CYCLES: cycles, UnitStatus.SORT_CYCLES: sort_cycles, UnitStatus.STALLS: stalls,
                UnitStatus.ERROR: error, UnitStatus.N_POINTS: n_points,
                UnitStatus.N_OUT: Mux(downsample, n_out, n_points)}
        table = Array([Array([unit[s] for s in UnitStatus]), Array(pair_counts)])
        m.d.comb += self.status_data.eq(table[self.status_addr.kind][self.status_addr.index])

        # Host read-back of the output list (stride 1: the sorted list, in src; stride 2: the
        # output points, in the other run memory).
        ports = [run.read_port() for run in runs]
        for p in ports:
            m.d.comb += [p.addr.eq(self.sorted.addr), p.en.eq(self.sorted.en)]
        m.d.comb += self.sorted.data.eq(Mux(src ^ downsample, ports[1].data, ports[0].data))
        return m
