from amaranth.hdl import Cat, Const, Module, ResetInserter, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.eie.activation_queue import activation_layout
from pyhdl.eie.lnzd import LeadingNonzeroDetector
from pyhdl.eie.register_fifo import RegisterFIFO
from pyhdl.params import bits_for, check_int, module_name
from pyhdl.primitives.block_ram import BlockRAM
from sw.formats import ACT_WIDTH


class ActivationScanner(wiring.Component):
    """The input activation buffer and the leading-nonzero detection that feeds the broadcast.

    The buffer holds ``max_cols`` signed activations as words of ``lnzd_width`` values in a
    ``BlockRAM``. After ``start`` the scanner fetches word after word (up to ``FETCH_AHEAD`` words
    ahead: the buffer's read and output registers, then a FIFO of the words with their nonzero
    lanes) into a window register; every cycle the LNZD tree picks
    the lowest remaining nonzero of the window (columns at or beyond ``n_cols`` do not count)
    and, when the broadcast register can take it, emits ``(col, value)`` and clears it. A window
    with nothing left is replaced by the next word in the same cycle (decided from the mask alone:
    no bit, or one bit that leaves now), so a word of zeros costs one cycle for ``lnzd_width``
    activations and a word with ``n`` nonzeros costs ``n`` cycles when the broadcast is not
    stalled.

    Timing (for the cycle model): with ``start`` high in cycle ``S``, word 0 is in the window in
    cycle ``S + FIRST_WINDOW``; a word entering the window in cycle ``w`` with nonzeros emitted in
    cycles ``l_1 < ... < l_n`` is followed by the next word in cycle ``l_n + 1`` (``w + 1`` if it has
    none); an emission in cycle ``l`` is on ``acts`` from ``l + 1`` until it is taken, and the next
    emission waits for that cycle.

    Attributes
    ----------
    load : Out(memory.WritePort.Signature)
        Host write port: activation ``addr`` (signed ``act_width`` bits); write while no scan runs
        (the buffer has no read-during-write bypass).
    n_cols : In
        Length of the input vector, read in the cycle of ``start`` (registered for the scan).
    start : In(1)
        Begin a scan from column 0.
    acts : Out(stream of activation_layout)
        The broadcast register.
    done : Out(1)
        The scan has finished and the broadcast register is empty (high until ``start``).
    """

    FIRST_WINDOW = 5    # cycles from `start` to word 0 in the window
    FETCH_AHEAD = 4     # words fetched ahead of the window (the `fetched` FIFO's depth)
    # The Verilog path of the activation memory (lnzd_width lanes a word): the buffer's behavioural memory.
    BUFFER_PATH = f"buffer.{BlockRAM.MEMORY_PATH}"

    @staticmethod
    def lane_bits(act_width: int = ACT_WIDTH) -> int:
        """Bits of a lane of the activation memory: the value, then its nonzero flag above it (a
        DP16KD lane is 18 bits wide, so the flag is free)."""
        return act_width + 1

    @staticmethod
    def buffer_words(values, lnzd_width: int, act_width: int = ACT_WIDTH) -> list:
        """The activation memory's words holding ``values`` (column ``j`` in lane ``j % lnzd_width``
        of word ``j // lnzd_width``, lane 0 in the low bits; a lane is the value in two's complement
        and, above it, the flag ``value != 0``): what the host port's writes leave there, for
        loading the memory directly in simulation."""
        w, aw, lb = lnzd_width, act_width, ActivationScanner.lane_bits(act_width)
        mask = (1 << aw) - 1
        vals = [(int(v) & mask) | (int(v) != 0) << aw for v in values]
        vals += [0] * (-len(vals) % w)
        return [sum(v << (lb * lane) for lane, v in enumerate(vals[i:i + w])) for i in range(0, len(vals), w)]

    def __init__(self, *, max_cols: int, lnzd_width: int = 8, act_width: int = ACT_WIDTH):
        self.max_cols = check_int("max_cols", max_cols)
        self.lnzd_width = check_lnzd_width(lnzd_width)
        self.act_width = check_int("act_width", act_width, minimum=2)
        self.n_words = -(-max_cols // lnzd_width)
        self.name = module_name("activation_scanner", max_cols=max_cols, lnzd_width=lnzd_width)
        self.col_width = bits_for(max_cols - 1)
        super().__init__({
            "load": Out(memory.WritePort.Signature(addr_width=bits_for(max_cols - 1), shape=act_width)),
            "n_cols": In(bits_for(max_cols)),
            "start": In(1),
            "acts": Out(stream.Signature(activation_layout(self.col_width, act_width))),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        w, aw = self.lnzd_width, self.act_width
        lane_bits = w.bit_length() - 1
        word_bits = bits_for(self.n_words)
        # The host loads the buffer while no scan runs: no read-during-write bypass (its hit flag
        # compared the host's write address, which fans out to every PE, with the read address).
        # A lane holds the value and its nonzero flag, so the fetch reads the flags straight from
        # the block RAM's output register (the word's compares were on the 4-PE array's path).
        lb = self.lane_bits(aw)
        m.submodules.buffer = buf = BlockRAM(shape=w * lb, depth=self.n_words, granularity=lb, bypass=False)
        lane = self.load.addr[:lane_bits]
        m.d.comb += [
            buf.write.addr.eq(self.load.addr >> lane_bits),
            buf.write.data.eq(Cat(self.load.data, self.load.data != 0).replicate(w)),
            buf.write.en.eq(self.load.en.replicate(w) & (1 << lane)),
        ]

        # The scan's length, registered at start: the fetch's comparisons start at flip-flops.
        scanning = Signal()
        n_cols = Signal.like(self.n_cols, name="scan_cols")
        n_words = Signal(word_bits, name="scan_words")
        with m.If(self.start):
            m.d.sync += [n_cols.eq(self.n_cols), n_words.eq((self.n_cols + (w - 1)) >> lane_bits)]

        # Fetch: the buffer's read register (stage 1) and output register (stage 2) advance every
        # cycle; a word leaving stage 2 is written, with its nonzero lanes and its index, into the
        # `fetched` FIFO, from which the window takes it. A word is issued while fewer than
        # FETCH_AHEAD are in the stages or the FIFO (registers only), so the window's take never
        # reaches the block RAM's clock enables and the FIFO always has room; FETCH_AHEAD words
        # cover the four cycles from issue to window, so a drained window never waits.
        fetch_ptr = Signal(word_bits)
        s_valid = [Signal(name=f"s{k}_valid") for k in (1, 2)]
        s_word = [Signal(word_bits, name=f"s{k}_word") for k in (1, 2)]
        s_lanes = [Signal(w, name=f"s{k}_lanes") for k in (1, 2)]
        fetched_layout = data.StructLayout({"data": w * aw, "nonzero": w, "word": word_bits})
        m.submodules.fetched = fetched = ResetInserter(self.start)(
            RegisterFIFO(width=fetched_layout.size, depth=self.FETCH_AHEAD))
        head = data.View(fetched_layout, fetched.r_data)
        head_valid = fetched.r_rdy
        window_take = Signal()
        ahead = s_valid[0] + s_valid[1] + fetched.level
        issue = scanning & (fetch_ptr < n_words) & (ahead < self.FETCH_AHEAD)
        in_range = Cat(Cat(Const(i, lane_bits), fetch_ptr) < n_cols for i in range(w))
        m.d.comb += [buf.read.addr.eq(fetch_ptr), buf.read.en.eq(1), buf.read.out_en.eq(1)]
        m.d.sync += [s_valid[0].eq(issue), s_word[0].eq(fetch_ptr), s_lanes[0].eq(in_range),
                     s_valid[1].eq(s_valid[0]), s_word[1].eq(s_word[0]), s_lanes[1].eq(s_lanes[0])]
        nonzero = Cat(buf.read.data[i * lb + aw] for i in range(w)) & s_lanes[1]
        values_read = Cat(buf.read.data[i * lb:i * lb + aw] for i in range(w))
        m.d.comb += [fetched.w_en.eq(s_valid[1]),
                     fetched.w_data.eq(Cat(values_read, nonzero, s_word[1])),
                     fetched.r_en.eq(window_take)]
        with m.If(issue):
            m.d.sync += fetch_ptr.eq(fetch_ptr + 1)

        # Window: the word being scanned, the nonzeros not yet emitted (mask) and whether none or
        # one of them is left (registers kept with the mask, so the drained decision, which
        # enables the window's load, is one LUT from flip-flops).
        window = Signal(w * aw)
        window_word = Signal(word_bits)
        mask = Signal(w)
        none_left, one_left = Signal(name="none_left"), Signal(name="one_left")
        window_valid = Signal()
        m.submodules.lnzd = lnzd = LeadingNonzeroDetector(width=w)
        m.d.comb += lnzd.mask.eq(mask)
        # The emitted value by a one-hot AND-OR select on the lowest set bit (two LUT levels after
        # it), not a mux tree on the LNZD's index (the 4-PE array's path at both grades).
        lowest = Cat(mask[i] & ~mask[:i].any() for i in range(w))
        value = Signal(aw)
        m.d.comb += value.eq(_or_all(window[i * aw:(i + 1) * aw] & lowest[i].replicate(aw) for i in range(w)))

        out_advance = ~self.acts.valid | self.acts.ready
        emit = window_valid & ~none_left & out_advance
        # Next states from registers alone, kept as wires so that the late take and emit (from
        # the broadcast's ready) select last, one LUT in front of each flip-flop: the mask without
        # its lowest bit (bit i stays if a lower bit is set; not through the LNZD's index), and the
        # flags of the FIFO head and of the mask after an emission.
        keep = {"keep": 1}
        cleared = Signal(w, name="mask_cleared", attrs=keep)
        head_none, head_one, two_left = (Signal(name=n, attrs=keep) for n in ("head_none", "head_one", "two_left"))
        m.d.comb += [
            cleared.eq(Cat(mask[i] & mask[:i].any() for i in range(w))),
            head_none.eq(head.nonzero == 0),
            head_one.eq(_single(head.nonzero)),
            two_left.eq(_double(mask)),
        ]
        # The window drains now: no bit left, or one bit and it leaves now.
        drained = Signal()
        m.d.comb += [
            drained.eq(none_left | one_left & out_advance),
            window_take.eq(head_valid & (~window_valid | drained)),
        ]
        with m.If(window_take):
            m.d.sync += [mask.eq(head.nonzero), none_left.eq(head_none), one_left.eq(head_one)]
        with m.Elif(emit):
            m.d.sync += [mask.eq(cleared), none_left.eq(one_left), one_left.eq(two_left)]

        with m.If(emit):
            m.d.sync += [
                self.acts.payload.col.eq(Cat(lnzd.index, window_word)),
                self.acts.payload.value.eq(value),
            ]
        with m.If(out_advance):
            m.d.sync += self.acts.valid.eq(emit)

        with m.If(window_take):
            m.d.sync += [window.eq(head.data), window_word.eq(head.word), window_valid.eq(1)]
        with m.Elif(window_valid & drained):
            m.d.sync += window_valid.eq(0)

        m.d.comb += self.done.eq(~scanning)
        with m.If(self.start):
            m.d.sync += [scanning.eq(1), fetch_ptr.eq(0), s_valid[0].eq(0), s_valid[1].eq(0),
                         window_valid.eq(0), self.acts.valid.eq(0)]
        with m.Elif(scanning & (fetch_ptr == n_words) & ~s_valid[0] & ~s_valid[1] & ~head_valid
                    & ~window_valid
                    & ~self.acts.valid):
            m.d.sync += scanning.eq(0)
        return m


def check_lnzd_width(lnzd_width: int) -> int:
    check_int("lnzd_width", lnzd_width, minimum=2)
    if lnzd_width & (lnzd_width - 1):
        raise ValueError(f"lnzd_width must be a power of two, got {lnzd_width}")
    return lnzd_width


def _single(bits):
    """Exactly one bit of ``bits`` is set."""
    return Cat(bits & ~(1 << i) == 0 for i in range(len(bits))).any() & (bits != 0)


def _double(bits):
    """Exactly two bits of ``bits`` are set."""
    n = len(bits)
    return Cat(bits == (1 << i | 1 << j) for i in range(n) for j in range(i + 1, n)).any()


def _or_all(values):
    """The bitwise OR of ``values``, as a balanced tree."""
    values = list(values)
    while len(values) > 1:
        values = [a | b for a, b in zip(values[0::2], values[1::2], strict=True)] + values[len(values) & ~1:]
    return values[0]
