"""The energy model (sw/cyclemodel/energy.py): its table agrees with docs/energy.md, and a
hand-worked layer."""

import re
from pathlib import Path

import numpy as np
import pytest

from sw.cyclemodel.energy import (
    DENSE_OPS,
    ENERGY_PJ,
    SPARSE_OPS,
    energy_per_inference,
    layer_counts,
    network_energy,
    op_energy,
)
from sw.pack import pack_eie
from sw.prune.export import IntegerLayer, IntegerNetwork

DOC = Path(__file__).resolve().parents[2] / "docs" / "energy.md"

# docs/spec.md §2.6, Example A (8×4, n_pe = 2).
EXAMPLE_A = np.array([[0, 5, 0, 0], [2, 0, 0, 0], [0, 0, 0, 9], [0, 3, 0, 0],
                      [0, 0, 0, 0], [4, 0, 0, 1], [7, 8, 0, 0], [0, 0, 0, 6]])


def doc_table() -> dict:
    text = DOC.read_text()
    m = re.search(r"<!-- energy-table -->\n(.*?)<!-- /energy-table -->", text, re.S)
    assert m, "docs/energy.md lost its energy-table markers"
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells[0].startswith("`"):
            continue                                      # header and rule
        key = cells[0].strip("`")
        assert key not in rows, f"{key} twice in docs/energy.md"
        rows[key] = float(cells[2])
    return rows


def test_doc_table_mirrors_the_code():
    assert doc_table() == ENERGY_PJ


def test_reported_figures_are_the_papers():
    # Horowitz ISSCC 2014 / EIE Table I, 45 nm: the 32-bit rows of the EIE table, exactly.
    assert {k: ENERGY_PJ[k] for k in ("int32_add", "float32_add", "reg32", "int32_mult", "float32_mult", "sram32",
                                      "dram32")} == \
        {"int32_add": 0.1, "float32_add": 0.9, "reg32": 1.0, "int32_mult": 3.1, "float32_mult": 3.7,
         "sram32": 5.0, "dram32": 640.0}
    # The estimates are the stated scalings.
    assert ENERGY_PJ["int16_mult"] == pytest.approx(ENERGY_PJ["int8_mult"] * 4)
    assert ENERGY_PJ["sram8"] == ENERGY_PJ["sram32"] / 4 and ENERGY_PJ["sram16"] == ENERGY_PJ["sram32"] / 2
    assert ENERGY_PJ["reg16"] == ENERGY_PJ["reg32"] / 2 and ENERGY_PJ["dram16"] == ENERGY_PJ["dram32"] / 2


def test_hand_worked_example_a():
    p = pack_eie(EXAMPLE_A, 2)
    x = np.array([1, 0, 0, 1])
    # Columns 0 and 3: PE 0 holds 1 + 1 entries, PE 1 2 + 2, so E = 6.
    c = layer_counts(p, x)
    assert c["sparse"] == {"act_read": 4, "broadcast": 4, "pointer_read": 8, "entry_read": 6, "codebook_read": 6,
                           "mac": 6, "acc_access": 12}
    assert c["dense"] == {"act_read": 4, "broadcast": 8, "weight_read": 32, "mac": 32, "acc_access": 64}
    r = energy_per_inference([p], [x])
    assert r.sparse == pytest.approx({"act_read": 2.0, "broadcast": 8.0, "pointer_read": 20.0, "entry_read": 7.5,
                                      "codebook_read": 3.0, "mac": 5.4, "acc_access": 12.0})
    assert r.sparse_pj == pytest.approx(57.9)            # docs/energy.md's example
    assert r.dense_pj == pytest.approx(2 + 16 + 80 + 28.8 + 64)
    assert r.dense_pj == pytest.approx(190.8)
    assert r.dense_dram_pj == pytest.approx(190.8 - 80 + 32 * 320)
    assert r.saving == pytest.approx(190.8 / 57.9)
    assert set(r.sparse) == set(SPARSE_OPS) and set(r.dense) == set(DENSE_OPS)
    d = r.to_dict()
    assert d["sparse_pj"] == r.sparse_pj and d["counts"] == [c]


def test_padding_entries_cost_like_real_ones_and_zero_inputs_cost_little():
    w = np.zeros((40, 2), dtype=np.int64)
    w[39, 0] = 3                                          # one PE, 39 zeros above: 2 padding entries + 1
    p = pack_eie(w, 1)
    assert p.n_padding == 2
    c = layer_counts(p, [1, 1])["sparse"]
    assert c["entry_read"] == 3 and c["mac"] == 3 and c["pointer_read"] == 4
    r = energy_per_inference([p], [[0, 0]])
    assert r.sparse_pj == pytest.approx(2 * ENERGY_PJ["reg16"])     # only the scanner's reads
    assert r.dense_pj == pytest.approx(op_energy()["act_read"] * 2 + 2 * 2 * ENERGY_PJ["reg32"]
                                       + 80 * (ENERGY_PJ["sram16"] + ENERGY_PJ["int16_mult"] + ENERGY_PJ["int32_add"]
                                               + 2 * ENERGY_PJ["reg32"]))


def test_network_energy_adds_up_the_layers():
    cb = np.array([0, 1, 2, 3], dtype=np.int16)
    l1 = IntegerLayer("fc1", (np.arange(12).reshape(3, 4) % 4).astype(np.uint8), cb, 0, True, 0, 0, 0)
    l2 = IntegerLayer("fc2", np.array([[1, 0, 2]], dtype=np.uint8), cb, 0, False, 0, 0, 0)
    net = IntegerNetwork((l1, l2), 0)
    a = np.array([1, 0, 2, 0])
    r = network_energy(net, a, 2)
    ref = energy_per_inference([pack_eie(l1.index, 2), pack_eie(l2.index, 2)], [a, l1.forward(a)])
    assert r.sparse == ref.sparse and r.dense == ref.dense and len(r.counts) == 2
    with pytest.raises(ValueError, match="one input per layer"):
        energy_per_inference([pack_eie(l1.index, 2)], [])
