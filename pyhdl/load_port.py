"""The write port through which the host loads a memory (address, data, enable)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import Out


def load_port_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """Host-side view: the host drives ``addr``/``data`` and pulses ``en`` for one cycle per word.

    Blocks take it flipped (``In(load_port_signature(...))``). Writes land at the next clock edge.
    """
    return wiring.Signature({
        "addr": Out(addr_width),
        "data": Out(data_width),
        "en": Out(1),
    })
