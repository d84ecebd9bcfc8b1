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


class MultiplierModel:
    """``Multiplier``: ``p = a · b`` (signed) through ``latency`` registers (1: output; 2: input,
    output; 3: input, product, output), every stage loading when ``en``, cleared by ``rst``."""

    def __init__(self, *, a_width: int, b_width: int, latency: int):
        self.a_width, self.b_width, self.latency = a_width, b_width, latency
        self.reset()

    def reset(self):
        self.a = self.b = 0          # input registers (signed values)
        self.prod = 0                # pipeline register
        self.p = 0                   # output register

    def edge(self, *, a, b, en, rst) -> int:
        """``a``, ``b``: signed values; returns ``p`` (signed) after the edge."""
        if rst:
            self.reset()
        elif en:
            if self.latency == 1:
                self.p = a * b
            elif self.latency == 2:
                self.p = self.a * self.b
                self.a, self.b = a, b
            else:
                self.p = self.prod
                self.prod = self.a * self.b
                self.a, self.b = a, b
        return self.p
