"""Simple dual-port block RAM with a registered output: an Amaranth ``Memory`` for simulation, ECP5
``DP16KD`` blocks with their output register (``REGMODE_B = "OUTREG"``) on ``pyhdl.platform.ECP5``.

The ``DP16KD`` mapping follows Lattice TN1264 (ECP5 Memory Usage Guide) and Yosys'
``techlibs/ecp5`` (``bram_conn_*.vh`` and ``bram_init_*.vh`` before ``memory_libmap``): in a
``w``-bit configuration the address sits on the top ``log2(16384 / 2**ceil(log2(w)))`` pins
(``AD13`` down), the data on ``DI0``/``DO0`` up; at 18 bits ``ADA0``/``ADA1`` are the write byte
enables. The array is 1024 words of 18 bits (two 9-bit bytes, bit 8 of each a parity bit that the
1/2/4-bit configurations skip); ``INITVAL_xx`` holds words ``16·xx .. 16·xx + 15``, each in a
20-bit field whose top 2 bits are unused.
"""

import math

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Shape, ShapeCastable, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import bits_for, check_int
from pyhdl.platform import is_ecp5

# DP16KD configurations (data bits, words), widest first; 512 x 36 needs PDPW16KD and is not used.
DP16KD_CONFIGS = ((18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
DP16KD_DEPTH = 16384        # words of the 1-bit configuration: one depth bank
DP16KD_ADDR_PINS = 14
INITVAL_WORDS = 16          # 18-bit words per INITVAL_xx parameter (20-bit fields)
INITVAL_PARAMS = 64


def read_signature(addr_width: int, shape) -> wiring.Signature:
    """The read port of :class:`BlockRAM`: ``addr``, ``en`` (load the array register), ``out_en``
    (load the output register), ``data`` (the output register)."""
    return wiring.Signature({
        "addr": In(addr_width),
        "en": In(1, init=1),
        "out_en": In(1, init=1),
        "data": Out(shape),
    })


def dp16kd_config(words: int) -> tuple:
    """``(width, depth)`` of the widest DP16KD configuration that holds ``words`` words."""
    for width, depth in DP16KD_CONFIGS:
        if words <= depth:
            return width, depth
    raise ValueError(f"one DP16KD holds at most {DP16KD_DEPTH} words, not {words}")


def dp16kd_bit(addr: int, bit: int, width: int) -> int:
    """Position in the 1024 x 18 array (``18·word + bit``) of data bit ``bit`` at ``addr`` of a
    ``width``-bit configuration: 9 and 18 fill whole bytes, 1/2/4 skip each byte's parity bit."""
    n = addr * width + bit
    return n if width >= 9 else n // 8 * 9 + n % 8


def dp16kd_initvals(contents, width: int) -> dict:
    """``INITVAL_00`` .. ``INITVAL_3F`` (320-bit ints) of a ``width``-bit DP16KD holding ``contents``
    (one int per address)."""
    words = [0] * (INITVAL_WORDS * INITVAL_PARAMS)
    for addr, value in enumerate(contents):
        for bit in range(width):
            if value >> bit & 1:
                pos = dp16kd_bit(addr, bit, width)
                words[pos // 18] |= 1 << pos % 18
    vals = {}
    for p in range(INITVAL_PARAMS):
        v = 0
        for i in range(INITVAL_WORDS):
            v |= words[p * INITVAL_WORDS + i] << (20 * i)
        vals[f"INITVAL_{p:02X}"] = v
    return vals


class BlockRAM(wiring.Component):
    """``depth`` words of ``shape``: one write port and one read port with two register stages.

    Cycle behaviour (both versions alike): in a cycle with ``read.en`` the array is read at
    ``read.addr`` into the array register (the value before a write to that address in the same
    cycle: read before write); in a cycle with ``read.out_en`` the output register ``read.data``
    loads the array register. With both enables high a word addressed in cycle ``c`` is on
    ``read.data`` in cycle ``c + 2``; throughput one read and one write a cycle. A write with
    ``write.en`` (one bit per granule with ``granularity``) stores ``write.data`` at
    ``write.addr``. Both registers start at 0 and ignore the domain's reset (as the FPGA's do
    without a reset wired); addresses ``>= depth`` are not allowed.

    ECP5 (``pyhdl.platform.ECP5``): ``DP16KD`` blocks, port A writing and port B reading (``CEB``
    = ``read.en``, ``OCEB`` = ``read.out_en``, ``REGMODE_B = "OUTREG"``), tiled into depth banks of
    16K words (the bank select registered alongside both stages) and, within a bank, width slices
    of the widest configuration holding the bank (each granule on whole slices). A DP16KD leaves a
    read of the address the other port writes in the same cycle undefined, so the write is
    registered one cycle (as Yosys' read-first emulation does) and a read of the address that
    delayed write is storing takes the written data through two bypass registers and a 2:1
    multiplexer after the output register. With ``bypass=False`` there is neither: the output
    register drives ``read.data`` directly, and a read of an address written in the same cycle or
    the cycle before is undefined on ECP5 (for memories that the host loads while nothing reads
    them).

    Parameters
    ----------
    shape : shape-like
        Word shape (``unsigned(n)``, ``signed(n)`` or a ``ShapeCastable``), at least 1 bit.
    depth : int
        Words, at least 1.
    init : iterable
        Initial contents from address 0 (as ``amaranth.lib.memory.Memory``); the rest 0.
    granularity : int or None
        Write granule (as ``memory.WritePort.Signature``): ``write.en`` has one bit per granule.
    bypass : bool
        Keep read-before-write for a read of the address just written (default); ``False``
        leaves that case undefined on ECP5 and takes the multiplexer off the read path.

    Attributes
    ----------
    write : Out(memory.WritePort.Signature(addr_width, shape, granularity))
    read : Out(read_signature(addr_width, shape))
        ``addr_width = bits_for(depth - 1)`` (at least 1).
    """

    # The Verilog name, below the block, of the behavioural version's memory (for simulations that
    # fill it with $readmemh).
    MEMORY_PATH = "memory"

    def __init__(self, *, shape, depth, init=(), granularity=None, bypass: bool = True):
        self.depth = check_int("depth", depth)
        if not isinstance(bypass, bool):
            raise TypeError(f"bypass must be a bool, not {bypass!r}")
        self.bypass = bypass
        if not isinstance(shape, ShapeCastable):
            try:
                shape = Shape.cast(shape)
            except TypeError as e:
                raise TypeError(f"shape must be shape-like, not {shape!r}") from e
        self.shape = shape
        self.width = Shape.cast(shape).width
        if self.width < 1:
            raise ValueError(f"shape must be at least 1 bit wide, not {self.width}")
        if granularity is not None:
            check_int("granularity", granularity)
        self.granularity = granularity
        self.addr_width = bits_for(depth - 1)
        write_sig = memory.WritePort.Signature(addr_width=self.addr_width, shape=shape, granularity=granularity)
        self.granules = Shape.cast(write_sig.members["en"].shape).width if granularity is not None else 1
        self.granule_width = self.width // self.granules
        init = list(init)
        self._data = memory.MemoryData(shape=shape, depth=depth, init=init)     # validates init
        self.init = [self._raw(v) for v in init]
        super().__init__({"write": Out(write_sig), "read": Out(read_signature(self.addr_width, shape))})

    def _raw(self, value) -> int:
        if isinstance(self.shape, ShapeCastable):
            return Const.cast(self.shape.const(value)).value & ((1 << self.width) - 1)
        c = Const.cast(value)
        w = self.width
        lo, hi = (-(1 << w - 1), (1 << w - 1) - 1) if self.shape.signed else (0, (1 << w) - 1)
        if not lo <= c.value <= hi:
            raise ValueError(f"init value {value!r} does not fit {self.shape!r}")
        return c.value & ((1 << self.width) - 1)

    def elaborate(self, platform):
        return self._elaborate_ecp5() if is_ecp5(platform) else self._elaborate_behavioural()

    def _elaborate_behavioural(self):
        m = Module()
        # A one-word Memory has a 0-bit address, which its Verilog declares as [-1:0]: use two.
        mem = memory.Memory(shape=self.shape, depth=max(2, self.depth), init=self._data.init)
        m.submodules[self.MEMORY_PATH] = mem
        wr = mem.write_port(granularity=self.granularity)
        rd = mem.read_port(transparent_for=())      # its data register is the array register
        m.d.comb += [
            wr.addr.eq(self.write.addr), Value.cast(wr.data).eq(Value.cast(self.write.data)), wr.en.eq(self.write.en),
            rd.addr.eq(self.read.addr), rd.en.eq(self.read.en),
        ]
        out = Signal(self.width, reset_less=True)
        with m.If(self.read.out_en):
            m.d.sync += out.eq(Value.cast(rd.data))
        m.d.comb += Value.cast(self.read.data).eq(out)
        return m

    def _elaborate_ecp5(self):
        m = Module()
        gw = self.granule_width
        # The write, registered (see the class docstring): DP16KD port A writes one cycle later.
        w_en = Signal(self.granules, reset_less=True)
        w_addr = Signal(self.addr_width, reset_less=True)
        w_data = Signal(self.width, reset_less=True)
        m.d.sync += [w_en.eq(self.write.en), w_addr.eq(self.write.addr), w_data.eq(Value.cast(self.write.data))]

        # Bypass of a read at the address the delayed write is storing, and the bank select, both
        # through the array register stage (read.en) and the output register stage (read.out_en).
        n_banks = math.ceil(self.depth / DP16KD_DEPTH)
        bank_bits = max(0, self.addr_width - DP16KD_ADDR_PINS)
        hit1, hit2 = (Signal(self.granules, reset_less=True, name=f"hit{i}") for i in (1, 2))
        byp1, byp2 = (Signal(self.width, reset_less=True, name=f"bypass{i}") for i in (1, 2))
        sel1, sel2 = (Signal(max(1, bank_bits), reset_less=True, name=f"bank{i}") for i in (1, 2))
        with m.If(self.read.en):
            if self.bypass:
                m.d.sync += [hit1.eq(Mux(w_addr == self.read.addr, w_en, 0)), byp1.eq(w_data)]
            if n_banks > 1:
                m.d.sync += sel1.eq(self.read.addr[DP16KD_ADDR_PINS:])
        with m.If(self.read.out_en):
            m.d.sync += sel2.eq(sel1)
            if self.bypass:
                m.d.sync += [hit2.eq(hit1), byp2.eq(byp1)]

        bank_outs = []
        for b in range(n_banks):
            words = min(DP16KD_DEPTH, self.depth - b * DP16KD_DEPTH)
            width, depth = dp16kd_config(words)
            bank_init = self.init[b * DP16KD_DEPTH: b * DP16KD_DEPTH + words]
            abits = depth.bit_length() - 1
            w_here = w_en if n_banks == 1 else Mux(w_addr[DP16KD_ADDR_PINS:] == b, w_en, 0)
            out = Signal(self.width, name=f"bank{b}_data")
            for g in range(self.granules):
                for s in range(math.ceil(gw / width)):
                    lo = g * gw + s * width
                    n = min(width, gw - s * width)
                    contents = [(v >> lo) & ((1 << n) - 1) for v in bank_init]
                    dob = Signal(18, name=f"bank{b}_granule{g}_slice{s}_dob")
                    m.submodules[f"bank{b}_granule{g}_slice{s}"] = self._dp16kd(
                        width, abits, contents, we=w_here[g], wa=w_addr[:abits], wd=w_data[lo: lo + n],
                        ra=self.read.addr[:abits], dob=dob)
                    m.d.comb += out[lo: lo + n].eq(dob[:n])
            bank_outs.append(out)
        raw = bank_outs[0]
        for b in range(1, n_banks):
            raw = Mux(sel2 == b, bank_outs[b], raw)
        if self.bypass:
            raw = Cat(*(Mux(hit2[g], byp2[g * gw: (g + 1) * gw], raw[g * gw: (g + 1) * gw])
                        for g in range(self.granules)))
        m.d.comb += Value.cast(self.read.data).eq(raw)
        return m

    def _dp16kd(self, width, abits, contents, *, we, wa, wd, ra, dob) -> Instance:
        """One DP16KD in its ``width``-bit configuration (``abits`` address bits): port A writes
        ``wd`` at ``wa`` when ``we`` (one cycle's delay already applied), port B reads ``ra`` into
        its array register (``CEB``) and output register (``OCEB``), which drives ``dob``."""
        low = DP16KD_ADDR_PINS - abits
        ports = {}
        for i in range(DP16KD_ADDR_PINS):
            if i >= low:        # a memory shallower than the configuration leaves its top pins at 0
                ports[f"i_ADA{i}"] = wa[i - low] if i - low < len(wa) else Const(0, 1)
                ports[f"i_ADB{i}"] = ra[i - low] if i - low < len(ra) else Const(0, 1)
            else:       # below the address: byte enables of an 18-bit write, else unused
                ports[f"i_ADA{i}"] = Const(1 if width == 18 and i < 2 else 0, 1)
                ports[f"i_ADB{i}"] = Const(0, 1)
        for i in range(18):
            ports[f"i_DIA{i}"] = wd[i] if i < len(wd) else Const(0, 1)
            ports[f"i_DIB{i}"] = Const(0, 1)
            ports[f"o_DOB{i}"] = dob[i]
        for i in range(3):
            ports[f"i_CSA{i}"] = Const(0, 1)
            ports[f"i_CSB{i}"] = Const(0, 1)
        params = {f"p_{k}": Const(v, 320) for k, v in dp16kd_initvals(contents, width).items()}
        return Instance(
            "DP16KD",
            p_DATA_WIDTH_A=width, p_DATA_WIDTH_B=width, p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="ENABLED", **params,
            i_CLKA=ClockSignal(), i_CEA=Const(1, 1), i_OCEA=Const(1, 1), i_WEA=we, i_RSTA=Const(0, 1),
            i_CLKB=ClockSignal(), i_CEB=self.read.en, i_OCEB=self.read.out_en, i_WEB=Const(0, 1),
            i_RSTB=Const(0, 1), **ports)
