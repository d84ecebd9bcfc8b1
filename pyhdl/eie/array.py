# amaranth: UnusedElaboratable=no
# (a PE object here only names the ports of its Verilog instance; it is elaborated once, alone.)
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from pyhdl.eie.activation_queue import activation_layout
from pyhdl.eie.activation_scanner import ActivationScanner, check_lnzd_width
from pyhdl.eie.processing_element import ProcessingElement, check_pe_params
from pyhdl.instance import instance_of
from pyhdl.params import bits_for, check_int, module_name
from pyhdl.replicas import replicas
from sw.formats import ACT_WIDTH, INDEX_WIDTH, QUEUE_DEPTH, WEIGHT_WIDTH


class Region(enum.IntEnum, shape=3):
    """The ``region`` field of a load address (:func:`load_address_layout`)."""

    CODEBOOK = 0      # offset: codebook entry 0..15 of PE `pe`
    COL_PTR = 1       # offset: pointer index 0..cols of PE `pe`
    SPMAT = 2         # offset: sparse-matrix entry of PE `pe`
    ACTIVATION = 3    # offset: input column (pe ignored)
    CONFIG = 4        # offset: a Config register (pe ignored)


class Config(enum.IntEnum):
    """The layer registers: offsets in :attr:`Region.CONFIG`."""

    N_COLS = 0
    N_ROWS = 1
    SHIFT = 2
    RELU = 3


class Status(enum.IntEnum, shape=2):
    """The ``kind`` field of a status address (:func:`status_address_layout`)."""

    BUSY = 0          # per PE: cycles with a MAC issued
    STARVED = 1       # per PE: cycles with an empty queue and nothing in flight
    STALLED = 2       # per PE: cycles with work in the PE but no MAC
    ARRAY = 3         # index: an ArrayStatus counter


class ArrayStatus(enum.IntEnum):
    """The array's own counters: the ``index`` under :attr:`Status.ARRAY`."""

    CYCLES = 0            # layer cycles
    BROADCAST_STALLS = 1  # cycles the broadcast waited on a full queue
    ERROR = 2             # the error flag


def load_address_layout(pe_bits: int, offset_bits: int) -> data.StructLayout:
    """The host load port's address: ``offset`` within ``region`` of PE ``pe``."""
    return data.StructLayout({"offset": offset_bits, "pe": pe_bits, "region": Region})


def status_address_layout(index_bits: int) -> data.StructLayout:
    """The host status port's address: counter ``kind`` of PE ``index`` (or array counter ``index``)."""
    return data.StructLayout({"index": index_bits, "kind": Status})


class EIEArray(wiring.Component):
    """``n_pe`` EIE processing elements behind an LNZD broadcast, with a host interface (docs/spec.md §3).

    Row ``i`` of the layer lives in PE ``i % n_pe`` as local row ``i // n_pe``. After ``start``
    the activation scanner finds the input's nonzeros (``lnzd_width`` activations per cycle
    through the LNZD tree) and broadcasts each ``(col, value)`` through a register and a register
    per group of ``GROUP`` PEs into every PE's queue in the same cycle (``BROADCAST_LATENCY``).
    The broadcast stops while some queue held ``queue_depth`` or more activations
    ``STOP_LATENCY`` cycles ago (the reduction is registered per PE and per group); each queue
    holds ``queue_depth + QUEUE_SLACK`` entries, so what is already on its way always finds room.
    ``done`` rises ``DONE_LATENCY`` cycles after a cycle in which the scan had finished, the
    broadcast was empty and every PE was idle. ``read_start`` (while ``done``) then streams the
    ``n_rows`` outputs on ``outputs`` in global row order, one row a cycle after six cycles of
    latency (a request register per PE, the PE's three output stages, a register per group, a FIFO).

    Host interface
    --------------
    load : Out(memory.WritePort.Signature)
        ``addr`` is a ``load_layout`` address (:meth:`address` encodes it): the codebooks,
        pointer and sparse-matrix memories of every PE, the input activations and the layer
        registers (:class:`Region`, :class:`Config`). Load while no layer runs: the block RAMs
        (activation buffer, pointer and sparse-matrix memories) have no read-during-write bypass.
    start : In(1), done : Out(1), running : Out(1)
    read_start : In(1), outputs : Out(stream of {row, value})
    status_addr : In(status_layout), status_data : Out(counter_width)
        Performance counters, combinational read (:class:`Status`, :class:`ArrayStatus`;
        :meth:`status_address` encodes the address); cleared by ``start``; 0 out of range.
    error : Out(1)
        Some PE saw a column beyond its loaded columns (or an activation met a full queue, which
        the slack rules out).

    Attributes
    ----------
    load_layout, status_layout : data.StructLayout
        The host's two address formats (:func:`load_address_layout`,
        :func:`status_address_layout`), decoded by the hardware and encoded by :meth:`address`
        and :meth:`status_address`.
    """

    GROUP = 8                 # PEs behind one broadcast register and one reduction register
    BROADCAST_LATENCY = 2     # fire -> every queue: the broadcast register, then the group's
    STOP_LATENCY = 2          # queue level -> stop: a register per PE, then one per group
    QUEUE_SLACK = BROADCAST_LATENCY + STOP_LATENCY    # queue entries beyond the stop threshold
    DONE_LATENCY = 2          # finished -> done: the idle reduction's two registers
    READOUT_DEPTH = 8         # read-out response FIFO (five responses in flight at most)

    def __init__(self, *, n_pe: int = 4, max_cols: int = 1024, max_entries: int = 4096,
                 max_local_rows: int = 64, queue_depth: int = QUEUE_DEPTH, lnzd_width: int = 8,
                 acc_width: int | None = None, counter_width: int = 32):
        self.n_pe = check_int("n_pe", n_pe)
        check_int("queue_depth", queue_depth)
        # Each PE's queue holds QUEUE_SLACK entries beyond the broadcast's stop threshold.
        self.pe_args = check_pe_params(max_cols=max_cols, max_entries=max_entries, max_local_rows=max_local_rows,
                                       queue_depth=queue_depth + self.QUEUE_SLACK, acc_width=acc_width,
                                       counter_width=counter_width)
        self.lnzd_width = check_lnzd_width(lnzd_width)
        self.max_cols, self.max_entries, self.max_local_rows = max_cols, max_entries, max_local_rows
        self.queue_depth, self.acc_width, self.counter_width = queue_depth, self.pe_args["acc_width"], counter_width
        self.max_rows = n_pe * max_local_rows
        self.pe_bits = bits_for(n_pe - 1)
        self.offset_bits = max(bits_for(max_cols), bits_for(max_entries - 1), INDEX_WIDTH)
        self.load_layout = load_address_layout(self.pe_bits, self.offset_bits)
        self.data_width = max(ACT_WIDTH, WEIGHT_WIDTH, bits_for(max_entries), bits_for(self.max_rows))
        self.row_width = bits_for(self.max_rows - 1)
        self.status_layout = status_address_layout(max(self.pe_bits, bits_for(len(ArrayStatus) - 1)))
        self.name = module_name("eie_array", n_pe=n_pe, max_cols=max_cols, max_entries=max_entries,
                                max_local_rows=max_local_rows, queue_depth=queue_depth, lnzd_width=lnzd_width)
        super().__init__({
            "load": Out(memory.WritePort.Signature(addr_width=self.load_layout.size, shape=self.data_width)),
            "start": In(1),
            "done": Out(1),
            "running": Out(1),
            "read_start": In(1),
            "outputs": Out(stream.Signature(data.StructLayout({"row": self.row_width, "value": signed(ACT_WIDTH)}))),
            "status_addr": In(self.status_layout),
            "status_data": Out(counter_width),
            "error": Out(1),
        })

    def verilog_dependencies(self) -> list:
        """The PE, written once beside the array's module and instantiated ``n_pe`` times."""
        return [ProcessingElement(**self.pe_args)]

    def address(self, region: int, pe: int = 0, offset: int = 0) -> int:
        """The load-port address of ``offset`` in ``region`` of PE ``pe`` (for drivers)."""
        return self.load_layout.const({"region": region, "pe": pe, "offset": offset}).as_bits()

    def status_address(self, kind: int, index: int = 0) -> int:
        """Status port address of counter ``kind`` of PE ``index`` (or array counter ``index``)."""
        return self.status_layout.const({"kind": kind, "index": index}).as_bits()

    def elaborate(self, platform):
        m = Module()
        m.submodules.scanner = scan = ActivationScanner(max_cols=self.max_cols, lnzd_width=self.lnzd_width)
        pes = []
        for k in range(self.n_pe):     # instances of the one PE module (verilog_dependencies)
            pe = ProcessingElement(**self.pe_args)
            m.submodules[f"pe{k}"] = instance_of(pe)
            pes.append(pe)

        addr = Signal(self.load_layout)         # named fields in the Verilog
        m.d.comb += addr.eq(self.load.addr)
        def by_group(xs):
            """``xs`` (one per PE) cut into the groups of ``GROUP`` PEs."""
            return [xs[i:i + self.GROUP] for i in range(0, len(xs), self.GROUP)]

        groups = by_group(pes)
        n_groups = len(groups)
        # The layer registers. Each group of PEs has its own copy of n_cols, shift and relu, written
        # by the same load (no register fans out to every PE); the scanner has its own n_cols.
        # The copies are `keep` (`pyhdl.replicas`): yosys would merge flip-flops loaded alike, and
        # the merged n_cols then ran from one PE's decoder to the scanner (the 4-PE array's path).
        keep = {"keep": 1}
        n_cols, n_rows = Signal(bits_for(self.max_cols), attrs=keep), Signal(bits_for(self.max_rows))
        copies = [(Signal(bits_for(self.max_cols), name=f"group{g}_n_cols", attrs=keep),
                   Signal(4, name=f"group{g}_shift", attrs=keep),
                   Signal(init=1, name=f"group{g}_relu", attrs=keep)) for g in range(n_groups)]
        for k, pe in enumerate(pes):
            mine = self.load.en & (addr.pe == k)
            for port, reg in ((pe.codebook_load, Region.CODEBOOK), (pe.ptr_load, Region.COL_PTR),
                              (pe.spmat_load, Region.SPMAT)):
                m.d.comb += [port.addr.eq(addr.offset), port.data.eq(self.load.data),
                             port.en.eq(mine & (addr.region == reg))]
            g_cols, g_shift, g_relu = copies[k // self.GROUP]
            m.d.comb += [pe.n_cols.eq(g_cols), pe.shift.eq(g_shift), pe.relu.eq(g_relu)]
        m.d.comb += [
            scan.load.addr.eq(addr.offset),
            scan.load.data.eq(self.load.data),
            scan.load.en.eq(self.load.en & (addr.region == Region.ACTIVATION)),
            scan.n_cols.eq(n_cols),
        ]
        with m.If(self.load.en & (addr.region == Region.CONFIG)):
            with m.Switch(addr.offset):
                with m.Case(Config.N_COLS):
                    m.d.sync += [n_cols.eq(self.load.data), *(c[0].eq(self.load.data) for c in copies)]
                with m.Case(Config.N_ROWS):
                    m.d.sync += n_rows.eq(self.load.data)
                with m.Case(Config.SHIFT):
                    m.d.sync += [c[1].eq(self.load.data) for c in copies]
                with m.Case(Config.RELU):
                    m.d.sync += [c[2].eq(self.load.data) for c in copies]

        # Broadcast: the scanner's activation goes through the broadcast register and one register
        # per group of PEs (BROADCAST_LATENCY) into every queue in the same cycle. It leaves the
        # scanner unless `stop`: some queue held `queue_depth` or more activations STOP_LATENCY
        # cycles ago (a register per PE, then one per group); the QUEUE_SLACK entries beyond that
        # threshold take what is already on its way, so no queue is ever written while full.
        layout = activation_layout(bits_for(self.max_cols - 1), ACT_WIDTH)
        bcast_valid = Signal()
        bcast = Signal(layout)
        nearly_full = [Signal(name=f"pe{k}_nearly_full") for k in range(self.n_pe)]
        group_stop = [Signal(name=f"group{g}_stop") for g in range(n_groups)]
        stop = Cat(group_stop).any()
        fire = scan.acts.valid & ~stop
        m.d.comb += scan.acts.ready.eq(~stop)
        m.d.sync += [bcast_valid.eq(fire), bcast.eq(scan.acts.payload)]
        overflow = Signal()
        # The group's valid bit is a register a PE (kept apart in synthesis), beside the PE's queue:
        # it starts the queue's level update, and one register fanned out to a group was, routed
        # across the array, the 16-PE array's path. One more copy is the group's own.
        group_valid = []
        for g, members in enumerate(groups):
            g_acts = Signal(layout, name=f"group{g}_acts")
            *valid, own = replicas(m, bcast_valid, len(members) + 1, f"group{g}_acts_valid")
            group_valid.append(own)
            m.d.sync += g_acts.eq(bcast)
            for pe, v in zip(members, valid, strict=True):
                m.d.comb += [pe.acts.valid.eq(v), pe.acts.payload.eq(g_acts)]
        for g, flags in enumerate(by_group(nearly_full)):
            m.d.sync += group_stop[g].eq(Cat(flags).any())
        for k, pe in enumerate(pes):
            m.d.sync += nearly_full[k].eq(pe.queue_level >= self.queue_depth)
        # Sticky: an activation met a full queue (the slack makes this impossible; a check).
        with m.If(self.start):
            m.d.sync += overflow.eq(0)
        with m.Elif(Cat(pe.acts.valid & ~pe.acts.ready for pe in pes).any()):
            m.d.sync += overflow.eq(1)

        # Layer control and array counters. The layer is done DONE_LATENCY cycles after a cycle
        # in which the scan had finished, nothing was in the broadcast and every PE was idle
        # (a register per PE and one per group, the scan's side delayed alike).
        running = Signal()
        pe_idle = [Signal(name=f"pe{k}_idle") for k in range(self.n_pe)]
        group_idle = [Signal(name=f"group{g}_idle") for g in range(n_groups)]
        quiet = [Signal(name=f"quiet{k}") for k in range(2)]
        m.d.sync += [pe_idle[k].eq(pe.idle) for k, pe in enumerate(pes)]
        for g, flags in enumerate(by_group(pe_idle)):
            m.d.sync += group_idle[g].eq(Cat(flags).all())
        bcast_empty = ~bcast_valid & ~Cat(group_valid).any()
        m.d.sync += [quiet[0].eq(scan.done & bcast_empty & ~self.start), quiet[1].eq(quiet[0] & ~self.start)]
        finished = quiet[1] & Cat(group_idle).all()

        cycles = Signal(self.counter_width)
        bcast_stalls = Signal(self.counter_width)
        m.d.comb += [scan.start.eq(self.start), self.running.eq(running),
                     self.error.eq(Cat(pe.error for pe in pes).any() | overflow)]
        # `running`, and one copy per group for the PEs' counters, set and cleared together.
        group_running = [Signal(name=f"group{g}_running") for g in range(n_groups)]
        for k, pe in enumerate(pes):
            m.d.comb += [pe.clear.eq(self.start), pe.running.eq(group_running[k // self.GROUP])]
        with m.If(self.start):
            m.d.sync += [running.eq(1), self.done.eq(0), cycles.eq(0), bcast_stalls.eq(0),
                         *(r.eq(1) for r in group_running)]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(scan.acts.valid & stop):
                m.d.sync += bcast_stalls.eq(bcast_stalls + 1)
            with m.If(finished):
                m.d.sync += [running.eq(0), self.done.eq(1), *(r.eq(0) for r in group_running)]

        array_counters = {ArrayStatus.CYCLES: cycles, ArrayStatus.BROADCAST_STALLS: bcast_stalls,
                          ArrayStatus.ERROR: self.error}
        counters = {
            Status.BUSY: [pe.busy_cycles for pe in pes],
            Status.STARVED: [pe.starved_cycles for pe in pes],
            Status.STALLED: [pe.stalled_cycles for pe in pes],
            Status.ARRAY: [array_counters[c] for c in ArrayStatus],
        }
        status = Array(Array(counters[kind]) for kind in Status)
        m.d.comb += self.status_data.eq(status[self.status_addr.kind][self.status_addr.index])

        # Read-out in global row order (row g is local row g // n_pe of PE g % n_pe), once the layer
        # is done (every PE idle, its output register free: a request is always taken). One request
        # a cycle while the response FIFO has room for everything in flight: a register per PE
        # (its `rows`), the PE's output stage (OutputStage.LATENCY), a register per group, the FIFO.
        m.submodules.readout = fifo = SyncFIFO(width=ACT_WIDTH, depth=self.READOUT_DEPTH)
        local_width = bits_for(self.max_local_rows - 1)
        issued = Signal(self.row_width + 1)             # rows requested
        delivered = Signal(self.row_width + 1)          # rows handed out on `outputs`
        rd_sel = Signal(self.n_pe, init=1)              # one-hot: the PE the next request goes to
        rd_local = Signal(local_width)
        reading = Signal()
        # `issue` from three registers (one LUT), as it fans out to every PE's request register:
        # `more` is `issued != n_rows` and `room` is `fifo.level + requests in flight <
        # READOUT_DEPTH`, both computed a cycle ahead from `occupied`, that sum kept as one
        # counter (a request adds one, a FIFO read takes one; an arrival moves one from flight
        # into the FIFO).
        more, room = Signal(), Signal(init=1)
        occupied = Signal(range(self.READOUT_DEPTH + 1))
        issue = reading & more & room
        fifo_read = fifo.r_en & fifo.r_rdy
        issued_next = Mux(issue, issued + 1, issued)
        occupied_next = occupied + issue - fifo_read
        m.d.sync += [occupied.eq(occupied_next), room.eq(occupied_next < self.READOUT_DEPTH),
                     issued.eq(issued_next), more.eq(issued_next != n_rows)]
        with m.If(self.read_start & self.done & ~reading):
            m.d.sync += [reading.eq(n_rows != 0), issued.eq(0), more.eq(n_rows != 0), delivered.eq(0),
                         rd_sel.eq(1), rd_local.eq(0)]
        with m.Elif(issue):
            m.d.sync += rd_sel.eq(rd_sel.rotate_left(1))
            with m.If(rd_sel[-1]):
                m.d.sync += rd_local.eq(rd_local + 1)
        # Each PE's requested row is its own register, loaded only for that PE: one shared register
        # (identical copies are merged by synthesis) fanned out to every PE's read address and
        # valid-bit mux and was the 16-PE array's critical path.
        request = [Signal(name=f"pe{k}_request") for k in range(self.n_pe)]
        request_row = [Signal(local_width, name=f"pe{k}_request_row") for k in range(self.n_pe)]
        for k, pe in enumerate(pes):
            m.d.sync += request[k].eq(issue & rd_sel[k])
            with m.If(issue & rd_sel[k]):
                m.d.sync += request_row[k].eq(rd_local)
            m.d.comb += [pe.rows.valid.eq(request[k]), pe.rows.payload.eq(request_row[k]),
                         pe.outputs.ready.eq(1)]
        group_valid_out = [Signal(name=f"group{g}_out_valid") for g in range(n_groups)]
        group_value = [Signal(signed(ACT_WIDTH), name=f"group{g}_out_value") for g in range(n_groups)]
        for g, members in enumerate(groups):
            m.d.sync += [
                group_valid_out[g].eq(Cat(pe.outputs.valid for pe in members).any()),
                group_value[g].eq(_or_all([pe.outputs.payload.value & pe.outputs.valid.replicate(ACT_WIDTH)
                                           for pe in members])),
            ]
        m.d.comb += [
            fifo.w_en.eq(Cat(group_valid_out).any()),
            fifo.w_data.eq(_or_all(group_value)),       # zero but for the group that answered
        ]
        m.d.comb += [
            self.outputs.valid.eq(fifo.r_rdy & reading),
            self.outputs.payload.value.eq(fifo.r_data),
            self.outputs.payload.row.eq(delivered),
            fifo.r_en.eq(self.outputs.ready & reading),
        ]
        with m.If(self.outputs.valid & self.outputs.ready):
            m.d.sync += delivered.eq(delivered + 1)
            with m.If(delivered + 1 == n_rows):
                m.d.sync += reading.eq(0)
        return m


def _or_all(values):
    """The bitwise OR of ``values`` (one-hot selection: every value but one is zero)."""
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out
