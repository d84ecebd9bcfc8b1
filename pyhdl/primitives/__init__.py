"""Blocks with a behavioural description for simulation and an ECP5 primitive mapping for synthesis.

``elaborate(platform)`` picks: ``pyhdl.platform.is_ecp5(platform)`` instantiates the Lattice
primitive with the registers Yosys' ``synth_ecp5`` leaves unused, anything else (``None``)
describes the same cycle behaviour in plain Amaranth. ``verif/tests/test_primitives.py`` runs
both, cycle for cycle, against a golden model (the primitives simulated by ``verif/ecp5/``).
"""
