"""Small cocotb building blocks every testbench uses: clock, reset, load ports, waiting."""

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

PERIOD_NS = 10


def cycle_of(period_steps: int) -> int:
    """The current clock cycle number."""
    from cocotb.utils import get_sim_time

    return get_sim_time("step") // period_steps


def start_clock(dut) -> int:
    """Start ``dut.clk``; return the clock period in simulator steps (for cycle numbers)."""
    from cocotb.utils import get_sim_steps

    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    return get_sim_steps(PERIOD_NS, "ns")


async def reset(dut, cycles: int = 2) -> None:
    """Amaranth's synchronous reset: registers return to their init values; memories keep theirs."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def write_words(dut, port: str, words, base: int = 0) -> None:
    """Write ``words`` at ``base, base + 1, ...`` through load port ``port``, one per cycle."""
    addr, data, en = (getattr(dut, f"{port}__{s}") for s in ("addr", "data", "en"))
    for i, w in enumerate(words):
        await RisingEdge(dut.clk)
        addr.value = base + i
        data.value = int(w)
        en.value = 1
    await RisingEdge(dut.clk)
    en.value = 0


async def settle(dut, cycles: int) -> None:
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await ReadOnly()
