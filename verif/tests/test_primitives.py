# amaranth: UnusedElaboratable=no
"""``pyhdl.primitives``: the ECP5 version (DP16KD / MULT18X18D instances, simulated with the
models of ``verif/ecp5/``) and the behavioural version behave the same, cycle for cycle, and both
equal the golden cycle model, under seeded random reads, writes, enables and resets.

Scenarios only; the miter and the cocotb lockstep checker live in ``verif/tb/primitives.py``.
"""

import re

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from pyhdl.gen import generate
from pyhdl.platform import ECP5, is_ecp5
from pyhdl.primitives.block_ram import BlockRAM, dp16kd_config
from pyhdl.primitives.multiplier import Multiplier
from verif.golden.primitives import BlockRAMModel, MultiplierModel
from verif.tb import primitives as tb

BANK = 16384

# (tag, shape, depth, granularity, init size): every DP16KD configuration and its init layout,
# width slices, two depth banks, a granular write, a signed word and a one-word memory; the
# units in NO_BYPASS are built with bypass=False and never read an address just written.
NO_BYPASS = {"nobyp", "nobyp_banked"}
RAMS = [
    ("wide", unsigned(40), 1000, None, 0),          # 1K x 18 config: slices of 18 + 18 + 4 bits
    ("banked", unsigned(3), BANK + 2500, None, -1),  # bank 0: 16K x 1 (3 slices), bank 1: 4K x 4
    ("init9", signed(9), 2000, None, -1),          # 2K x 9
    ("init2", unsigned(5), 8000, None, 5000),      # 8K x 2: slices of 2 + 2 + 1 bits
    ("gran", unsigned(32), 600, 8, 500),           # 1K x 18, one slice per 8-bit granule
    ("one", unsigned(1), 1, None, -1),
    ("nobyp", unsigned(13), 1500, None, 800),      # 2K x 9 slices, no bypass multiplexer
    ("nobyp_banked", unsigned(2), BANK + 100, None, -1),
]


def _init(rng, shape, depth, count):
    count = depth if count < 0 else count
    if shape.signed:
        return rng.integers(-(1 << shape.width - 1), 1 << shape.width - 1, count).tolist()
    return rng.integers(0, 1 << shape.width, count).tolist()


def ram_units(seed=1):
    rng = np.random.default_rng(seed)
    units = []
    for tag, shape, depth, gran, n_init in RAMS:
        init = _init(rng, shape, depth, n_init)
        units.append((tag, shape, depth, gran, init))
    return units


@pytest.fixture(scope="module")
def ram_model():
    units = [(tag, lambda s=shape, d=depth, g=gran, i=init, b=tag not in NO_BYPASS:
              BlockRAM(shape=s, depth=d, init=i, granularity=g, bypass=b))
             for tag, shape, depth, gran, init in ram_units()]
    return tb.build("prim_ram", units)


def ram_case(seed, n_random):
    """A sweep reading every initialised word in turn, then ``n_random`` cycles in phases of
    enable probabilities, with addresses often on a small hot set (so reads meet this cycle's and
    the last cycle's writes) and on the bank edges."""
    rng = np.random.default_rng(seed)
    units = ram_units()
    n_sweep = max(d for _, _, d, _, _ in units)
    n = n_sweep + n_random
    case = {"rst": np.zeros(n, dtype=np.int64)}
    case["rst"][rng.random(n) < 0.01] = 1          # reset must change nothing
    phases = [(1.0, 1.0, 1.0), (0.6, 0.8, 0.8), (0.8, 0.4, 0.9), (0.9, 1.0, 0.3), (0.3, 0.6, 0.6)]
    for tag, shape, depth, gran, init in units:
        width = shape.width
        granules = width // gran if gran else 1
        aw = max(1, (depth - 1).bit_length())
        hot = np.unique(np.concatenate([rng.integers(0, depth, 4), [0, depth - 1],
                                        [a for a in (BANK - 1, BANK) if a < depth]]))
        waddr, wdata, wen = (np.zeros(n, dtype=np.int64) for _ in range(3))
        raddr, ren, oen = np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64)
        raddr[:n_sweep] = np.arange(n_sweep) % depth
        for t in range(n_sweep, n):
            p_w, p_r, p_o = phases[(t - n_sweep) * len(phases) // n_random]
            waddr[t] = rng.choice(hot) if rng.random() < 0.5 else rng.integers(0, depth)
            wdata[t] = int(rng.integers(0, 1 << width)) if width < 63 else int(rng.integers(0, 1 << 62)) << 1
            wen[t] = int(rng.integers(1, 1 << granules)) if rng.random() < p_w else 0
            pick = rng.random()
            raddr[t] = waddr[t] if pick < 0.2 else waddr[t - 1] if pick < 0.4 else \
                rng.choice(hot) if pick < 0.7 else rng.integers(0, depth)
            if tag in NO_BYPASS:        # undefined without the bypass: move the read elsewhere
                while (wen[t] and raddr[t] == waddr[t]) or (wen[t - 1] and raddr[t] == waddr[t - 1]):
                    raddr[t] = rng.integers(0, depth)
            ren[t] = rng.random() < p_r
            oen[t] = rng.random() < p_o
        mask = (1 << width) - 1
        golden = BlockRAMModel(width=width, depth=depth, init=[v & mask for v in init], granules=granules)
        exp = [golden.edge(write_addr=int(waddr[t]), write_data=int(wdata[t]) & mask, write_en=int(wen[t]),
                           read_addr=int(raddr[t]), read_en=int(ren[t]), out_en=int(oen[t])) for t in range(n)]
        assert raddr.max() < (1 << aw)
        for port, v in (("write__addr", waddr), ("write__data", wdata & mask), ("write__en", wen),
                        ("read__addr", raddr), ("read__en", ren), ("read__out_en", oen)):
            case[f"in/{tag}__{port}"] = v
        case[f"exp/{tag}__read__data"] = np.array(exp, dtype=object).astype(np.uint64) if width <= 64 else exp
    return case


def test_block_ram_ecp5_equals_behavioural(ram_model, tmp_path):
    m = tb.run(ram_model, ram_case(seed=7, n_random=6000), tmp_path)
    assert m["cycles"] == max(d for _, _, d, _, _ in RAMS) + 6000


# Structure of the ECP5 mapping (what equivalence cannot see: which configuration, how many).

def _instances(text, cell):
    return re.findall(rf"\b{cell} #\((.*?)\) \S+ \(", text, re.S)


@pytest.mark.parametrize("shape, depth, gran, want", [
    (unsigned(40), 1000, None, [18, 18, 18]),
    (unsigned(8), 1024, None, [18]),
    (unsigned(8), 1025, None, [9]),
    (unsigned(9), 2048, None, [9]),
    (unsigned(9), 2049, None, [4, 4, 4]),
    (unsigned(4), 4096, None, [4]),
    (unsigned(2), 8192, None, [2]),
    (unsigned(2), 8193, None, [1, 1]),
    (unsigned(1), BANK, None, [1]),
    (unsigned(2), BANK + 1, None, [1, 1, 18]),
    (unsigned(16), 512, 8, [18, 18]),
])
def test_block_ram_tiles_dp16kd(shape, depth, gran, want):
    ram = BlockRAM(shape=shape, depth=depth, granularity=gran)
    ram.name = "ram"
    insts = _instances(generate(ram, platform=ECP5()), "DP16KD")
    widths = sorted((int(re.search(r"\.DATA_WIDTH_B\(32'd(\d+)\)", i).group(1)) for i in insts), reverse=True)
    assert widths == sorted(want, reverse=True)
    for i in insts:
        assert '.REGMODE_B("OUTREG")' in i and re.search(r"\.DATA_WIDTH_A\(32'd(\d+)\)", i).group(1) == \
            re.search(r"\.DATA_WIDTH_B\(32'd(\d+)\)", i).group(1)


@pytest.mark.parametrize("bypass", [True, False])
def test_block_ram_bypass_registers_only_with_bypass(bypass):
    ram = BlockRAM(shape=12, depth=300, bypass=bypass)
    ram.name = "ram"
    text = generate(ram, platform=ECP5())
    assert ("hit1" in text and "bypass2" in text) == bypass
    assert ("hit1" in text or "bypass2" in text) == bypass


def test_block_ram_behavioural_has_no_primitive():
    ram = BlockRAM(shape=8, depth=64)
    ram.name = "ram"
    assert "DP16KD" not in generate(ram) and "DP16KD" in generate(ram, platform=ECP5())


def test_dp16kd_config():
    assert [dp16kd_config(n) for n in (1, 1024, 1025, 2048, 2049, 4096, 4097, 8192, 8193, BANK)] == \
        [(18, 1024), (18, 1024), (9, 2048), (9, 2048), (4, 4096), (4, 4096), (2, 8192), (2, 8192), (1, BANK),
         (1, BANK)]
    with pytest.raises(ValueError):
        dp16kd_config(BANK + 1)


def test_platform_marker():
    assert is_ecp5(ECP5()) and not is_ecp5(None) and not is_ecp5(object())


def test_block_ram_parameters_validated():
    with pytest.raises(ValueError, match="depth"):
        BlockRAM(shape=8, depth=0)
    with pytest.raises(TypeError, match="depth"):
        BlockRAM(shape=8, depth=2.0)
    with pytest.raises(ValueError, match="at least 1 bit"):
        BlockRAM(shape=0, depth=4)
    with pytest.raises(TypeError, match="shape"):
        BlockRAM(shape="x", depth=4)
    with pytest.raises(TypeError, match="bypass"):
        BlockRAM(shape=8, depth=4, bypass=0)
    with pytest.raises(ValueError, match="granularity"):
        BlockRAM(shape=8, depth=4, granularity=0)
    with pytest.raises(ValueError, match="evenly divide"):
        BlockRAM(shape=8, depth=4, granularity=3)
    with pytest.raises(ValueError, match="exceeds memory depth"):
        BlockRAM(shape=8, depth=2, init=[1, 2, 3])
    with pytest.raises(ValueError, match="does not fit"):
        BlockRAM(shape=8, depth=2, init=[256])
    with pytest.raises(ValueError, match="does not fit"):
        BlockRAM(shape=signed(8), depth=2, init=[128])
    ram = BlockRAM(shape=signed(8), depth=5, init=[-1, 127], granularity=None)
    assert ram.init == [255, 127] and ram.addr_width == 3
    assert BlockRAM(shape=8, depth=1).addr_width == 1
    assert len(BlockRAM(shape=32, depth=4, granularity=8).write.en) == 4


def test_block_ram_layout_words():
    """A ShapeCastable word (an array of signed nibbles, one write granule each): its init values
    become the raw bits the DP16KD INITVALs hold, element 0 lowest."""
    layout = data.ArrayLayout(signed(4), 3)
    ram = BlockRAM(shape=layout, depth=4, init=[[-1, 2, -8], [7, 0, 1]], granularity=1)
    assert ram.init == [0x8_2_F, 0x1_0_7] and len(ram.write.en) == 3 and ram.granule_width == 4
    ram.name = "ram"
    text = generate(ram, platform=ECP5())
    # 1K x 18 configuration, one slice per nibble; INITVAL_00 holds words 0 and 1 in 20-bit fields.
    assert len(_instances(text, "DP16KD")) == 3
    assert [re.findall(r"\.INITVAL_00\(320'h0*([0-9a-f]+)\)", i)[0] for i in _instances(text, "DP16KD")] == \
        ["70000f", "2", "100008"]      # word 1 in bits 20.. of INITVAL_00


# (latency, a_width, b_width): each latency at int8 and at the full 18 x 18, and odd widths.
MULTS = [(1, 8, 8), (2, 8, 8), (3, 8, 8), (1, 18, 18), (2, 18, 18), (3, 18, 18), (2, 18, 5), (3, 1, 18), (1, 7, 3)]


@pytest.fixture(scope="module")
def mult_model():
    units = [(f"l{lat}_{aw}x{bw}", lambda lat=lat, aw=aw, bw=bw: Multiplier(a_width=aw, b_width=bw, latency=lat))
             for lat, aw, bw in MULTS]
    return tb.build("prim_mult", units)


def _operands(rng, width, n):
    """Random signed operands, a third of them the extremes (min, max, -1, 0, 1)."""
    lo, hi = -(1 << width - 1), (1 << width - 1) - 1
    x = rng.integers(lo, hi + 1, n)
    extremes = np.array([lo, hi, -1, 0, 1])
    extremes = extremes[(extremes >= lo) & (extremes <= hi)]
    pick = rng.random(n) < 0.35
    x[pick] = rng.choice(extremes, pick.sum())
    return x


def mult_case(seed, n):
    rng = np.random.default_rng(seed)
    case = {"rst": (rng.random(n) < 0.01).astype(np.int64)}
    case["rst"][:2] = 1
    for lat, aw, bw in MULTS:
        tag = f"l{lat}_{aw}x{bw}"
        a, b = _operands(rng, aw, n), _operands(rng, bw, n)
        p_en = np.repeat([1.0, 0.5, 0.9, 0.2, 1.0], -(-n // 5))[:n]
        en = (rng.random(n) < p_en).astype(np.int64)
        golden = MultiplierModel(a_width=aw, b_width=bw, latency=lat)
        mask = (1 << aw + bw) - 1
        exp = [golden.edge(a=int(a[t]), b=int(b[t]), en=int(en[t]), rst=int(case["rst"][t])) & mask for t in range(n)]
        case[f"in/{tag}__a"] = a & ((1 << aw) - 1)
        case[f"in/{tag}__b"] = b & ((1 << bw) - 1)
        case[f"in/{tag}__en"] = en
        case[f"exp/{tag}__p"] = np.array(exp, dtype=np.int64)
    return case


def test_multiplier_ecp5_equals_behavioural(mult_model, tmp_path):
    m = tb.run(mult_model, mult_case(seed=3, n=4000), tmp_path)
    assert m["cycles"] == 4000 and m["checked"] == 4000 * len(MULTS)


@pytest.mark.parametrize("latency, regs", [(1, ("NONE", "NONE", "CLK0")), (2, ("CLK0", "NONE", "CLK0")),
                                           (3, ("CLK0", "CLK0", "CLK0"))])
def test_multiplier_uses_the_dsp_registers(latency, regs):
    mult = Multiplier(a_width=8, b_width=8, latency=latency)
    mult.name = "mult"
    beh, ecp5 = generate(mult), generate(mult, platform=ECP5())
    assert "MULT18X18D" not in beh
    (inst,) = _instances(ecp5, "MULT18X18D")
    got = tuple(re.search(rf'\.{p}_CLK\("(\w+)"\)', inst).group(1)
                for p in ("REG_INPUTA", "REG_PIPELINE", "REG_OUTPUT"))
    assert got == regs and re.search(r'\.REG_INPUTB_CLK\("(\w+)"\)', inst).group(1) == regs[0]
    # No fabric register and no logic around the DSP: only the instance and wiring.
    body = ecp5.split("MULT18X18D #(")[0]
    assert "always @(posedge" not in body and "reg " not in body.split("module mult(")[1]


def test_multiplier_parameters_validated():
    with pytest.raises(ValueError, match="a_width must be <= 18"):
        Multiplier(a_width=19, b_width=8, latency=2)
    with pytest.raises(ValueError, match="b_width must be >= 1"):
        Multiplier(a_width=8, b_width=0, latency=2)
    with pytest.raises(ValueError, match="latency must be <= 3"):
        Multiplier(a_width=8, b_width=8, latency=4)
    with pytest.raises(ValueError, match="latency must be >= 1"):
        Multiplier(a_width=8, b_width=8, latency=0)
    with pytest.raises(TypeError, match="latency"):
        Multiplier(a_width=8, b_width=8, latency=True)
    m = Multiplier(a_width=18, b_width=5, latency=3)
    assert len(m.p) == 23 and m.p.shape().signed and m.en.init == 1
