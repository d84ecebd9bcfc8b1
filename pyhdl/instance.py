"""A component emitted once as its own Verilog module and instantiated by name.

Amaranth writes every submodule as a separate copy of its module, so an array of ``n`` equal
blocks becomes ``n`` copies of the block's Verilog. A parent that instead instantiates the block
with :func:`instance_of` and lists it in ``verilog_dependencies()`` gets one module definition
(``pyhdl.gen.generate`` appends it) and ``n`` instances of it: Verilog size and Verilator build
time stop growing with ``n`` copies of the block's logic.
"""

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Value
from amaranth.lib.wiring import In


def port_name(path) -> str:
    """The Verilog port Amaranth gives a flattened signature member (``acts__payload``)."""
    return "__".join(str(p) for p in path)


def instance_of(component, **kwargs) -> Instance:
    """An ``Instance`` of ``component.name`` whose ports are ``component``'s own signals (its
    signature, flattened as Amaranth names top-level ports), clocked by the ``sync`` domain."""
    ports = {}
    for path, member, value in component.signature.flatten(component):
        prefix = "i_" if member.flow == In else "o_"
        ports[prefix + port_name(path)] = Value.cast(value)
    return Instance(component.name, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports, **kwargs)
