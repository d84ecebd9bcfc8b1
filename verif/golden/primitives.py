"""Cycle models of ``pyhdl.primitives``, written from their contracts (the class docstrings).

Each model is advanced one clock edge at a time with that cycle's inputs and returns the
registered outputs after the edge; unsigned ints stand for the bit patterns on the ports.
"""


class BlockRAMModel:
    """``BlockRAM``: the array register loads ``mem[read_addr]`` (before this cycle's write) when
    ``read_en``; the output register loads the array register when ``out_en``; the write stores
    each granule whose ``write_en`` bit is set. Both registers start at 0; reset has no effect."""

    def __init__(self, *, width: int, depth: int, init=(), granules: int = 1):
        assert width % granules == 0
        self.width, self.depth, self.granules = width, depth, granules
        self.granule_mask = (1 << (width // granules)) - 1
        self.mem = [0] * depth
        self.mem[:len(init)] = [int(v) for v in init]
        self.q0 = 0
        self.data = 0

    def edge(self, *, write_addr, write_data, write_en, read_addr, read_en, out_en) -> int:
        if out_en:
            self.data = self.q0
        if read_en:
            self.q0 = self.mem[read_addr]
        if write_en:
            gw = self.width // self.granules
            old = self.mem[write_addr]
            for g in range(self.granules):
                if write_en >> g & 1:
                    old = old & ~(self.granule_mask << g * gw) | write_data & (self.granule_mask << g * gw)
            self.mem[write_addr] = old
        return self.data

