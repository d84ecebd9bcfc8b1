"""The simulation runtime of sparsehw: Verilator models built and cached from ``pyhdl`` tops,
cocotb runs driven from Python, the EIE host driver, and the ``sim``, ``demo`` and ``bench``
commands. It sits above ``pyhdl/`` and ``sw/`` and below the command line; ``verif/`` (the
regression) builds on it, never the other way round.
"""
