"""Elaboration targets: what ``platform`` a block's ``elaborate`` is given.

Amaranth passes one ``platform`` object to every ``elaborate`` of a design. ``None`` (simulation,
``rtl/``, any other synthesis flow) selects the behavioural description; an :class:`ECP5` object
selects the Lattice ECP5 primitives where a block has them (``pyhdl.primitives``: ``DP16KD``
block RAM with its output register, ``MULT18X18D`` with its pipeline registers), which Yosys'
``synth_ecp5`` would not infer. ``runtime.bench.synth`` elaborates for :class:`ECP5`.
"""


class ECP5:
    """Marker: elaborate for Lattice ECP5 primitives (``DP16KD``, ``MULT18X18D``)."""

    family = "ecp5"

    def __repr__(self):
        return "ECP5()"


def is_ecp5(platform) -> bool:
    """Whether ``platform`` asks for ECP5 primitives (an object whose ``family`` is ``"ecp5"``)."""
    return getattr(platform, "family", None) == "ecp5"
