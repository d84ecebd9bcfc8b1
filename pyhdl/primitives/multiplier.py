"""Signed multiplier with 1 to 3 register stages: registers and ``*`` for simulation, one ECP5
``MULT18X18D`` with its own registers on ``pyhdl.platform.ECP5``."""

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from pyhdl.params import check_int
from pyhdl.platform import is_ecp5

MULT18_WIDTH = 18
# Latency -> the MULT18X18D registers in use: input (A and B), pipeline, output.
STAGES = {1: (False, False, True), 2: (True, False, True), 3: (True, True, True)}


class Multiplier(wiring.Component):
    """``p = a · b``, signed, ``latency`` cycles after the operands (with ``en`` high throughout).

    ``latency`` 1: output register only; 2: input registers and output register; 3: input,
    pipeline (after the multiplier array) and output registers. Every stage loads only in a cycle
    with ``en`` high and holds otherwise, so a held ``en`` stalls the whole multiplier; the
    domain's reset clears every stage to 0. Throughput one product a cycle.

    ECP5 (``pyhdl.platform.ECP5``): one ``MULT18X18D``, operands sign-extended to 18 bits
    (``SIGNEDA = SIGNEDB = 1``), the stages its ``REG_INPUTA/B``, ``REG_PIPELINE`` and
    ``REG_OUTPUT`` registers on ``CLK0`` with ``CE0 = en`` and ``RST0`` the domain's reset
    (``RESETMODE = "SYNC"``), so no fabric register or LUT is left around it.

    Parameters
    ----------
    a_width, b_width : int
        Operand widths, 1 .. 18.
    latency : int
        1, 2 or 3.

    Attributes
    ----------
    a : In(signed(a_width))
    b : In(signed(b_width))
    en : In(1, init=1)
    p : Out(signed(a_width + b_width))
    """

    def __init__(self, *, a_width: int, b_width: int, latency: int):
        self.a_width = check_int("a_width", a_width, maximum=MULT18_WIDTH)
        self.b_width = check_int("b_width", b_width, maximum=MULT18_WIDTH)
        self.latency = check_int("latency", latency, maximum=max(STAGES))
        super().__init__({
            "a": In(signed(a_width)),
            "b": In(signed(b_width)),
            "en": In(1, init=1),
            "p": Out(signed(a_width + b_width)),
        })

    def elaborate(self, platform):
        return self._elaborate_ecp5() if is_ecp5(platform) else self._elaborate_behavioural()

    def _elaborate_behavioural(self):
        m = Module()
        reg_in, reg_pipe, _ = STAGES[self.latency]
        a, b = self.a, self.b
        if reg_in:
            a, b = Signal.like(self.a, name="a_reg"), Signal.like(self.b, name="b_reg")
            with m.If(self.en):
                m.d.sync += [a.eq(self.a), b.eq(self.b)]
        product = a * b
        if reg_pipe:
            product = Signal(signed(self.a_width + self.b_width), name="product_reg")
            with m.If(self.en):
                m.d.sync += product.eq(a * b)
        with m.If(self.en):
            m.d.sync += self.p.eq(product)
        return m

    def _elaborate_ecp5(self):
        m = Module()
        reg_in, reg_pipe, reg_out = STAGES[self.latency]
        a = Signal(signed(MULT18_WIDTH))
        b = Signal(signed(MULT18_WIDTH))
        p = Signal(2 * MULT18_WIDTH)
        m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(p[:self.a_width + self.b_width])]
        zero = Const(0, 1)
        ports = {}
        for i in range(MULT18_WIDTH):
            ports[f"i_A{i}"], ports[f"i_B{i}"], ports[f"i_C{i}"] = a[i], b[i], zero
        for i in range(2 * MULT18_WIDTH):
            ports[f"o_P{i}"] = p[i]
        for i in (1, 2, 3):
            ports[f"i_CLK{i}"], ports[f"i_CE{i}"], ports[f"i_RST{i}"] = zero, zero, zero

        def clk(used):
            return "CLK0" if used else "NONE"

        m.submodules.mult18x18d = Instance(
            "MULT18X18D",
            p_REG_INPUTA_CLK=clk(reg_in), p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK=clk(reg_in), p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
            p_REG_INPUTC_CLK="NONE", p_REG_INPUTC_CE="CE0", p_REG_INPUTC_RST="RST0",
            p_REG_PIPELINE_CLK=clk(reg_pipe), p_REG_PIPELINE_CE="CE0", p_REG_PIPELINE_RST="RST0",
            p_REG_OUTPUT_CLK=clk(reg_out), p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
            p_CLK0_DIV="ENABLED", p_CLK1_DIV="ENABLED", p_CLK2_DIV="ENABLED", p_CLK3_DIV="ENABLED",
            p_HIGHSPEED_CLK="NONE", p_GSR="ENABLED", p_CAS_MATCH_REG="FALSE", p_SOURCEB_MODE="B_SHIFT",
            p_MULT_BYPASS="DISABLED", p_RESETMODE="SYNC",
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=zero, i_SOURCEB=zero,
            i_CLK0=ClockSignal(), i_CE0=self.en, i_RST0=ResetSignal(), **ports)
        return m
