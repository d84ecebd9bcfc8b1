from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from pyhdl.eie.activation_queue import ActivationQueue, activation_layout
from pyhdl.eie.arithmetic_unit import ArithmeticUnit
from pyhdl.eie.csc_decoder import CSCDecoder
from pyhdl.eie.destination_registers import DestinationRegisters
from pyhdl.eie.output_stage import OutputStage, output_layout
from pyhdl.eie.pointer_read import check_col_ptr
from pyhdl.eie.spmat_read import check_entries
from pyhdl.eie.weight_decoder import WeightDecoder, check_codebook_init
from pyhdl.params import bits_for, check_int, module_name
from pyhdl.primitives.block_ram import BlockRAM
from sw.formats import ACT_WIDTH, ENTRY_WIDTH, INDEX_WIDTH, PRODUCT_WIDTH, QUEUE_DEPTH, WEIGHT_WIDTH


def min_acc_width(max_cols: int) -> int:
    """Accumulator bits so that ``max_cols`` products of int16 x int16 can never overflow.

    Each product lies in ``[-2**30 + 2**15, 2**30]``; the sum of ``max_cols`` of them in
    ``[-max_cols * 2**30, max_cols * 2**30]``, which a signed ``31 + bit_length(max_cols)``-bit
    value holds.
    """
    return PRODUCT_WIDTH - 1 + int(max_cols).bit_length()


def check_pe_params(*, max_cols, max_entries, max_local_rows, queue_depth, acc_width=None,
                    act_width=ACT_WIDTH, weight_width=WEIGHT_WIDTH, counter_width=32) -> dict:
    """Validate a PE's parameters; returns them with ``acc_width`` resolved to its minimum if None."""
    check_int("max_cols", max_cols)
    check_int("max_entries", max_entries)
    check_int("max_local_rows", max_local_rows)
    check_int("queue_depth", queue_depth)
    check_int("counter_width", counter_width, minimum=8)
    if act_width != ACT_WIDTH or weight_width != WEIGHT_WIDTH:
        raise ValueError(f"act_width and weight_width must be {ACT_WIDTH} and {WEIGHT_WIDTH} (docs/spec.md §1), "
                         f"got {act_width} and {weight_width}")
    need = min_acc_width(max_cols)
    acc = need if acc_width is None else check_int("acc_width", acc_width)
    if acc < need:
        raise ValueError(f"acc_width = {acc_width} can overflow: a sum of max_cols = {max_cols} "
                         f"int16 x int16 products needs {need} bits")
    return dict(max_cols=max_cols, max_entries=max_entries, max_local_rows=max_local_rows,
                queue_depth=queue_depth, acc_width=acc, counter_width=counter_width)


class ProcessingElement(wiring.Component):
    """One EIE processing element (docs/spec.md §3).

    activation queue → CSC decoder (pointer read, sparse-matrix read, address accumulator) →
    weight decoder → arithmetic unit (with bypass) → destination registers → output stage.

    Parameters
    ----------
    max_cols, max_entries, max_local_rows : int
        Memory sizes (see ``CSCDecoder``).
    queue_depth : int
        Activation queue entries (default 8).
    acc_width : int, optional
        Accumulator width; at least ``min_acc_width(max_cols)`` (the default).
    act_width, weight_width : int
        Must be the spec's 16 and 16.
    counter_width : int
        Width of the performance counters.
    codebook, col_ptr, entries : optional init images.

    Attributes
    ----------
    acts : In(stream of {col, value})
        Nonzero input activations (the array's broadcast).
    queue_full, queue_level : Out
    codebook_load, ptr_load, spmat_load : Out(memory.WritePort.Signature)
        Host write ports of the codebook, the pointer and the sparse-matrix memories.
    n_cols : In
        Columns of the loaded layer; a column at or beyond it sets ``error``.
    clear : In(1)
        Layer start: zero every accumulator, the error flag and the counters.
    running : In(1)
        The layer is running (the counters count while it is high).
    rows : In(stream of local row), outputs : Out(stream of {local_row, value})
        Read-out of ``clamp(acc >> shift) (+ ReLU)``; rows are accepted only while ``idle``.
    shift : In(4), relu : In(1)
        Read-out settings, registered in the PE whenever ``rows.valid`` is high (an enable of the
        PE's own, so the copies in an array are not merged into one register that fans out to
        every PE's shifter): set them before the first row is offered and hold them while reading.
    idle : Out(1)
        Queue empty and nothing in flight.
    error : Out(1)
    busy_cycles, starved_cycles, stalled_cycles : Out(counter_width)
        While ``running``, each cycle at the sparse-matrix read: an entry issued (a MAC, which
        follows ``ISSUE_TO_MAC`` cycles later, ``sw.cyclemodel.eie``); nothing to work on (queue
        and pointer stages empty: the PE waits for activations); an empty column consumed. The
        three add up to the running cycles.

    Throughput: one stored entry (padding included) per cycle while the queue holds work,
    across column boundaries and for any sequence of destination rows.
    """

    # The Verilog paths, below a PE instance, of the memories a simulation may fill in bulk (the
    # CSC decoder's block RAMs and their behavioural memories): the pointer banks and the
    # sparse-matrix memory.
    MEMORY_PATHS = {"col_ptr_even": f"decoder.pointer_read.even.{BlockRAM.MEMORY_PATH}",
                    "col_ptr_odd": f"decoder.pointer_read.odd.{BlockRAM.MEMORY_PATH}",
                    "spmat": f"decoder.spmat_read.mem.{BlockRAM.MEMORY_PATH}"}

    def __init__(self, *, max_cols: int = 1024, max_entries: int = 4096, max_local_rows: int = 64,
                 queue_depth: int = QUEUE_DEPTH, acc_width: int | None = None, act_width: int = ACT_WIDTH,
                 weight_width: int = WEIGHT_WIDTH, counter_width: int = 32,
                 codebook=None, col_ptr=None, entries=None):
        params = check_pe_params(max_cols=max_cols, max_entries=max_entries, max_local_rows=max_local_rows,
                                 queue_depth=queue_depth, acc_width=acc_width, act_width=act_width,
                                 weight_width=weight_width, counter_width=counter_width)
        self.acc_width = params["acc_width"]
        self.max_cols, self.max_entries, self.max_local_rows = max_cols, max_entries, max_local_rows
        self.queue_depth, self.counter_width = queue_depth, counter_width
        self.act_width, self.weight_width = act_width, weight_width
        self.codebook = check_codebook_init(codebook, weight_width)
        self._decoder_args = dict(max_cols=max_cols, max_entries=max_entries, max_local_rows=max_local_rows,
                                  value_width=act_width, col_ptr=col_ptr, entries=entries)
        check_col_ptr(col_ptr, max_cols, max_entries)
        check_entries(entries, max_entries)
        self.col_width = bits_for(max_cols - 1)
        self.row_width = bits_for(max_local_rows - 1)
        self.name = module_name("eie_pe", max_cols=max_cols, max_entries=max_entries,
                                max_local_rows=max_local_rows, queue_depth=queue_depth, acc_width=self.acc_width)
        super().__init__({
            "acts": In(stream.Signature(activation_layout(self.col_width, act_width))),
            "queue_full": Out(1),
            "queue_level": Out(bits_for(queue_depth)),
            "codebook_load": Out(memory.WritePort.Signature(addr_width=INDEX_WIDTH, shape=weight_width)),
            "ptr_load": Out(memory.WritePort.Signature(addr_width=bits_for(max_cols), shape=bits_for(max_entries))),
            "spmat_load": Out(memory.WritePort.Signature(addr_width=bits_for(max_entries - 1), shape=ENTRY_WIDTH)),
            "n_cols": In(bits_for(max_cols)),
            "clear": In(1),
            "running": In(1),
            "rows": In(stream.Signature(self.row_width)),
            "outputs": Out(stream.Signature(output_layout(self.row_width, act_width))),
            "shift": In(4),
            "relu": In(1),
            "idle": Out(1),
            "error": Out(1),
            "busy_cycles": Out(counter_width),
            "starved_cycles": Out(counter_width),
            "stalled_cycles": Out(counter_width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = ActivationQueue(
            queue_depth=self.queue_depth, col_width=self.col_width, act_width=self.act_width)
        m.submodules.decoder = decoder = CSCDecoder(**self._decoder_args)
        m.submodules.weight_decoder = wdec = WeightDecoder(
            row_width=self.row_width, act_width=self.act_width, weight_width=self.weight_width,
            codebook=self.codebook)
        m.submodules.arithmetic_unit = au = ArithmeticUnit(
            max_local_rows=self.max_local_rows, acc_width=self.acc_width, act_width=self.act_width,
            weight_width=self.weight_width)
        m.submodules.destination_registers = dest = DestinationRegisters(
            max_local_rows=self.max_local_rows, acc_width=self.acc_width)
        m.submodules.output_stage = out = OutputStage(
            max_local_rows=self.max_local_rows, acc_width=self.acc_width, act_width=self.act_width)

        connect(m, wiring.flipped(self.acts), queue.push)
        m.d.comb += [
            self.queue_full.eq(queue.full),
            self.queue_level.eq(queue.level),
            decoder.n_cols.eq(self.n_cols),
            decoder.error_clear.eq(self.clear),
            self.error.eq(decoder.error),
            au.clear.eq(self.clear),
            dest.clear.eq(self.clear),
            dest.acc_read_ahead.eq(au.acc_read_ahead),
        ]
        connect(m, queue.pop, decoder.cols)
        connect(m, decoder.decoded, wdec.entries)
        connect(m, wdec.weighted, au.entries)
        connect(m, au.acc_read, dest.acc_read)
        connect(m, au.acc_write, dest.acc_write)
        # The read-out settings, loaded from the PE's own row request (a register in an array).
        shift, relu = Signal(4), Signal()
        with m.If(self.rows.valid):
            m.d.sync += [shift.eq(self.shift), relu.eq(self.relu)]
        m.d.comb += [out.shift.eq(shift), out.relu.eq(relu)]
        connect(m, out.out_read, dest.out_read)
        m.d.comb += out.row_valid.eq(dest.row_valid)
        connect(m, wiring.flipped(self.codebook_load), wdec.load)
        connect(m, wiring.flipped(self.ptr_load), decoder.ptr_load)
        connect(m, wiring.flipped(self.spmat_load), decoder.spmat_load)
        connect(m, out.outputs, wiring.flipped(self.outputs))

        pipeline_empty = ~decoder.busy & ~wdec.weighted.valid & ~au.busy
        idle = Signal()
        m.d.comb += [
            idle.eq(~queue.pop.valid & pipeline_empty),
            self.idle.eq(idle),
            # Read-out waits until every accepted activation has been accumulated.
            out.rows.valid.eq(self.rows.valid & idle),
            out.rows.payload.eq(self.rows.payload),
            self.rows.ready.eq(out.rows.ready & idle),
        ]

        # Every running cycle is classified at the sparse-matrix read: an entry issued (its MAC
        # follows), an empty column consumed, or nothing to work on.
        with m.If(self.clear):
            m.d.sync += [self.busy_cycles.eq(0), self.starved_cycles.eq(0), self.stalled_cycles.eq(0)]
        with m.Elif(self.running):
            with m.If(decoder.issued):
                m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
            with m.Elif(decoder.skipped):
                m.d.sync += self.stalled_cycles.eq(self.stalled_cycles + 1)
            with m.Else():
                m.d.sync += self.starved_cycles.eq(self.starved_cycles + 1)
        return m
