"""Energy per inference of the EIE array against a dense 16-bit baseline on the same PEs, from
operation counts and a per-operation energy table (45 nm; ``docs/energy.md`` gives the sources).

:data:`ENERGY_PJ` is the table, in picojoules, defined here once; ``docs/energy.md`` mirrors it
(a test parses that file's table and compares). Operation counts per layer, for a layer packed
for ``n_pe`` PEs (``sw.pack.pack_eie``) and its input ``x`` (``cols`` activations, ``n_nz`` of
them nonzero); ``E`` = stored entries, padding included, of the nonzero activations' columns
summed over the PEs (what the PEs' busy counters count, docs/spec.md §3.4):

| operation | EIE (sparse) | dense baseline | energy of one |
|---|---|---|---|
| ``act_read``: input activation read by the scanner | ``cols`` | ``cols`` | ``reg16`` |
| ``broadcast``: one activation into one PE's queue, and out | ``n_nz · n_pe`` | ``cols · n_pe`` | ``2 · reg32`` |
| ``pointer_read``: ``col_ptr[j]`` or ``col_ptr[j+1]`` | ``2 · n_nz · n_pe`` | — | ``sram16`` |
| ``entry_read``: 8-bit sparse-matrix word | ``E`` | — | ``sram8`` |
| ``codebook_read``: 16-bit codebook register | ``E`` | — | ``reg16`` |
| ``weight_read``: 16-bit dense weight | — | ``rows · cols`` | ``sram16`` |
| ``mac``: 16×16-bit multiply, accumulate | ``E`` | ``rows · cols`` | ``int16_mult + int32_add`` |
| ``acc_access``: destination register read or write | ``2 · E`` | ``2 · rows · cols`` | ``reg32`` |

Padding entries are counted like real ones: the hardware reads, decodes, multiplies (by 0) and
writes them back. The dense baseline stores every weight as 16 bits in the same kind of SRAM (no
codebook, no pointers: its addresses are counters) and broadcasts every activation. Both read
out the same ``rows`` outputs; that is left out. ``dense_dram`` is the dense baseline with its
weights read from DRAM instead (``dram16`` each), the case EIE's on-chip storage avoids.
"""

from dataclasses import dataclass

import numpy as np

# Energy per operation in pJ, 45 nm CMOS at 0.9 V (docs/energy.md: sources and what is scaled).
ENERGY_PJ = {
    # Reported by Horowitz, "Computing's Energy Problem (and what we can do about it)", ISSCC 2014;
    # the 32-bit figures and the register file, SRAM and DRAM rows as in Table I of the EIE paper.
    "int8_add": 0.03,
    "int16_add": 0.05,
    "int32_add": 0.1,
    "float16_add": 0.4,
    "float32_add": 0.9,
    "int8_mult": 0.2,
    "int32_mult": 3.1,
    "float16_mult": 1.1,
    "float32_mult": 3.7,
    "reg32": 1.0,
    "sram32": 5.0,
    "dram32": 640.0,
    # Estimated here by scaling the reported figures (docs/energy.md).
    "int16_mult": 0.8,
    "reg16": 0.5,
    "sram8": 1.25,
    "sram16": 2.5,
    "dram16": 320.0,
}

SPARSE_OPS = ("act_read", "broadcast", "pointer_read", "entry_read", "codebook_read", "mac", "acc_access")
DENSE_OPS = ("act_read", "broadcast", "weight_read", "mac", "acc_access")


def op_energy(table: dict | None = None, dram: bool = False) -> dict:
    """Energy in pJ of one of each counted operation (the last column of the module's table);
    ``dram``: dense weights read from DRAM."""
    t = ENERGY_PJ if table is None else table
    return {"act_read": t["reg16"], "broadcast": 2 * t["reg32"], "pointer_read": t["sram16"],
            "entry_read": t["sram8"], "codebook_read": t["reg16"],
            "weight_read": t["dram16"] if dram else t["sram16"],
            "mac": t["int16_mult"] + t["int32_add"], "acc_access": t["reg32"]}


def layer_counts(packed, x) -> dict:
    """``{"sparse": {op: count}, "dense": {op: count}}`` for one layer (this module's table)."""
    x = np.asarray(x)
    if x.ndim != 1 or x.shape[0] != packed.cols:
        raise ValueError(f"x must be a vector of the layer's {packed.cols} inputs, got shape {x.shape}")
    active = np.flatnonzero(x)
    n_nz, n_pe, cols, rows = int(active.size), int(packed.n_pe), int(packed.cols), int(packed.rows)
    entries = sum(int(np.diff(np.asarray(pe.col_ptr, dtype=np.int64))[active].sum()) for pe in packed.pe)
    return {"sparse": {"act_read": cols, "broadcast": n_nz * n_pe, "pointer_read": 2 * n_nz * n_pe,
                       "entry_read": entries, "codebook_read": entries, "mac": entries,
                       "acc_access": 2 * entries},
            "dense": {"act_read": cols, "broadcast": cols * n_pe, "weight_read": rows * cols,
                      "mac": rows * cols, "acc_access": 2 * rows * cols}}


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one inference in pJ, per operation and in total, for EIE (``sparse``), the dense
    16-bit baseline with weights in SRAM (``dense``) and with weights in DRAM (``dense_dram``);
    ``counts``: per layer, :func:`layer_counts`."""

    sparse: dict
    dense: dict
    dense_dram: dict
    counts: list

    @property
    def sparse_pj(self) -> float:
        return float(sum(self.sparse.values()))

    @property
    def dense_pj(self) -> float:
        return float(sum(self.dense.values()))

    @property
    def dense_dram_pj(self) -> float:
        return float(sum(self.dense_dram.values()))

    @property
    def saving(self) -> float:
        """Dense (SRAM) energy / EIE energy."""
        return self.dense_pj / self.sparse_pj

    def to_dict(self) -> dict:
        return {"sparse": self.sparse, "dense": self.dense, "dense_dram": self.dense_dram,
                "sparse_pj": self.sparse_pj, "dense_pj": self.dense_pj, "dense_dram_pj": self.dense_dram_pj,
                "saving": self.saving, "counts": self.counts}


def energy_per_inference(layers, inputs, table: dict | None = None) -> EnergyReport:
    """Energy of one inference through the packed ``layers`` (``sw.pack.pack_eie`` results, run
    in order), ``inputs[i]`` being layer ``i``'s input activations (only which are nonzero
    matters), with the per-operation energies of ``table`` (default :data:`ENERGY_PJ`)."""
    layers, inputs = list(layers), list(inputs)
    if len(layers) != len(inputs) or not layers:
        raise ValueError(f"need one input per layer, got {len(layers)} layers and {len(inputs)} inputs")
    counts = [layer_counts(p, x) for p, x in zip(layers, inputs, strict=True)]
    cost, cost_dram = op_energy(table), op_energy(table, dram=True)

    def add(kind, ops, c):
        return {op: float(sum(n[kind][op] for n in counts) * c[op]) for op in ops}

    return EnergyReport(add("sparse", SPARSE_OPS, cost), add("dense", DENSE_OPS, cost),
                        add("dense", DENSE_OPS, cost_dram), counts)


def network_energy(net, a, n_pe: int, table: dict | None = None) -> EnergyReport:
    """:func:`energy_per_inference` of an integer network (``sw.prune.export.IntegerNetwork``) on
    one quantised input ``a``, every layer packed for ``n_pe`` PEs and fed the previous layer's
    integer outputs."""
    from sw.pack.eie import pack_eie

    inputs = net.activations(np.asarray(a, dtype=np.int64))[:-1]
    return energy_per_inference([pack_eie(ly.index, n_pe) for ly in net.layers], inputs, table)
