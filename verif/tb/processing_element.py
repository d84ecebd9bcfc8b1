"""Testbench of the EIE processing element: load a packed PE image and a codebook, stream
``(col, value)`` activations in, read every local row out, and score against the golden model
(outputs, error flag) and the cycle model (queue push cycles, idle cycle, performance counters).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from pyhdl.eie.processing_element import ProcessingElement
from runtime import sim
from runtime.eie.host import decoder_words
from runtime.payload import pack, unpack
from runtime.scaffold import Testbench
from sw.cyclemodel.eie import pe_timing
from verif.golden.csc import decode_column
from verif.golden.eie_pe import pe_accumulators, pe_outputs

PARAMS = dict(max_cols=256, max_entries=16384, max_local_rows=64, queue_depth=8)
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Run ``cases`` on a built PE model; returns per-case measurements (``cases``) and totals."""
    return sim.run(model, MODULE, cases, testcase="pe_layer", test_dir=test_dir)


def make_case(name, pe, codebook, cols, local_rows, acts, *, n_cols=None, shift=0, relu=True,
              p_valid=1.0, p_ready=1.0, p_read=1.0, seed=0, params=PARAMS):
    """A case: PE image + codebook + activations, with the golden outputs it must produce."""
    pe_params = {k: params[k] for k in ("max_cols", "max_entries", "max_local_rows")}
    col_ptr, words = decoder_words(pe, cols, local_rows, **pe_params)
    n_cols = cols if n_cols is None else n_cols
    acts = [(int(c), int(v)) for c, v in acts]
    cb = [int(v) for v in codebook]
    outputs, error = pe_outputs(pe.col_ptr, pe.weight_idx, pe.rel_index, cb, acts, n_cols, local_rows, shift, relu)
    acc, _ = pe_accumulators(pe.col_ptr, pe.weight_idx, pe.rel_index, cb, acts, n_cols, local_rows)
    entries = [len(decode_column(pe.col_ptr, pe.weight_idx, pe.rel_index, c)) if c < n_cols else 0
               for c, _ in acts]
    return dict(
        name=name, **params, col_ptr=col_ptr, entries=words, codebook=np.asarray(cb, dtype=np.int64),
        act_col=np.asarray([c for c, _ in acts], dtype=np.int64),
        act_value=np.asarray([v for _, v in acts], dtype=np.int64),
        col_entries=np.asarray(entries, dtype=np.int64),
        dropped=np.asarray([c >= n_cols for c, _ in acts], dtype=np.int64),
        n_cols=n_cols, local_rows=local_rows, shift=shift, relu=int(relu),
        p_valid=p_valid, p_ready=p_ready, p_read=p_read, seed=seed,
        exp_out=np.asarray(outputs, dtype=np.int64), exp_error=int(error),
        max_abs_acc=max((abs(a) for a in acc), default=0),
    )


@cocotb.test()
async def pe_layer(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    measured = []
    for i, case in enumerate(cases):
        tag = f"case {i} ({case['name']})"
        pe = ProcessingElement(**{k: int(case[k]) for k in PARAMS})
        await tb.reset("acts__valid", "rows__valid", "outputs__ready", "running", "codebook_load__en",
                       "ptr_load__en", "spmat_load__en", "clear")
        dut.clear.value = 1
        await RisingEdge(dut.clk)
        dut.clear.value = 0
        await tb.write("codebook_load", [v & 0xFFFF for v in case["codebook"]])
        await tb.write("ptr_load", case["col_ptr"])
        await tb.write("spmat_load", case["entries"])
        dut.n_cols.value = int(case["n_cols"])
        dut.shift.value = int(case["shift"])
        dut.relu.value = int(case["relu"])

        # Compute phase: activations stream in while `running` is high.
        await RisingEdge(dut.clk)
        run_start = tb.cycle + 1
        dut.running.value = 1
        seed = int(case["seed"])
        src = tb.source("acts", p_valid=float(case["p_valid"]), seed=seed)
        src.send(pack(pe.acts.payload.shape(), {"col": case["act_col"], "value": case["act_value"]}))
        n_acts = len(case["act_col"])
        budget = 100 + 4 * (int(np.sum(np.maximum(case["col_entries"], 1))) + n_acts) / float(case["p_valid"])
        idle_at = 1 + await tb.wait_until(lambda s=src, n=n_acts: s.idle and len(s.sent) == n and dut.idle.value == 1,
                                          budget, f"{tag}: the PE did not go idle")
        await RisingEdge(dut.clk)
        tb.stop()
        dut.acts__valid.value = 0
        dut.running.value = 0
        run_end = tb.cycle
        await ReadOnly()
        counters = [int(getattr(dut, f"{c}_cycles").value) for c in ("busy", "starved", "stalled")]
        assert int(dut.error.value) == int(case["exp_error"]), f"{tag}: error flag {dut.error.value}"

        # Exact timing against the cycle model, given when each activation was offered.
        timing = pe_timing(case["col_entries"], int(case["queue_depth"]),
                           offer=[t for t in src.offered], dropped=case["dropped"].astype(bool))
        pushes = [t for t, _ in src.sent]
        assert pushes == timing.push.tolist(), f"{tag}: queue accepted on cycles {pushes[:12]}..., " \
                                               f"model {timing.push.tolist()[:12]}..."
        want_idle = int(max(timing.end.max(initial=0), timing.push.max(initial=0)) + 1)
        assert idle_at == want_idle, f"{tag}: idle on cycle {idle_at}, model {want_idle}"
        want = timing.counters(run_start, run_end)
        assert tuple(counters) == want, f"{tag}: counters busy/starved/stalled {counters}, model {want}"
        assert counters[0] == timing.macs

        # Read-out phase: every local row, with back-pressure on both sides.
        await RisingEdge(dut.clk)
        rows = tb.source("rows", p_valid=float(case["p_read"]), seed=seed + 1)
        sink = tb.sink("outputs", p_ready=float(case["p_ready"]), seed=seed + 2)
        local_rows = int(case["local_rows"])
        rows.send(range(local_rows))
        await tb.drain(sink, local_rows, budget=100 + 8 * local_rows * 4, settle=4, tag=tag)
        got = unpack(pe.outputs.payload.shape(), sink.values)
        assert got["local_row"].tolist() == list(range(local_rows)), f"{tag}: rows read out out of order"
        for r, (g, e) in enumerate(zip(got["value"].tolist(), case["exp_out"].tolist(), strict=True)):
            assert g == e, f"{tag}: local row {r}: RTL {g}, golden {e}"
        measured.append({"case": i, "macs": timing.macs, "first_push": pushes[0] if pushes else run_start,
                         "idle_at": idle_at, "busy": counters[0], "starved": counters[1],
                         "stalled": counters[2]})
    tb.report({"cases": measured})
