"""Testbench of the EIE array: the runtime's network driver (``runtime.eie.network``) with the
golden model (``verif.golden.eie_layer``) as the reference every output is checked against; the
driver also checks cycles, per-PE counters and broadcast stalls against the cycle model."""

import numpy as np

from runtime.eie import network
from verif.golden.eie_layer import layer as golden_layer

run = network.run


def golden(packed, x, shift: int, relu: bool) -> np.ndarray:
    return np.asarray(golden_layer(packed.weights().astype(np.int64).tolist(), np.asarray(x).tolist(),
                                   shift, relu), dtype=np.int64)


def make_case(name, params: dict, layers, x, **kw):
    """``runtime.eie.network.make_case`` with the golden model's outputs as the expectation."""
    return network.make_case(name, params, layers, x, reference=golden, **kw)
