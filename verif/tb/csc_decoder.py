"""Testbench of the CSC decoder: case construction from packed PE images and the golden model,
and the cocotb test that drives a case list through the RTL and scores it.

``decode_columns`` checks every decoded entry bit-exactly against ``verif.golden.csc``, the
sticky error flag, ``error_clear``, and (error-free streams without back-pressure) the cycle on
which every entry leaves: ``first column accepted + LATENCY + issue slot``.
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from pyhdl.eie.csc_decoder import CSCDecoder
from pyhdl.params import bits_for
from runtime import sim
from runtime.eie.host import decoder_words
from runtime.payload import unpack
from runtime.scaffold import Testbench
from sw.formats import entry_word
from verif.golden.csc import decode_stream

PARAMS = dict(max_cols=256, max_entries=4096, max_local_rows=64)
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Run ``cases`` on a built decoder model.

    Returns the totals ``entries`` and ``cycles`` over the timed cases (error-free, no
    back-pressure; cycles from the first column accepted to the last entry out) and ``timed``,
    the same per case.
    """
    return sim.run(model, MODULE, cases, testcase="decode_columns", test_dir=test_dir)


def make_case(name, pe, cols, local_rows, columns, *, n_cols=None, p_valid=1.0,
              p_ready=1.0, seed=0, load=True, params=PARAMS, corrupt=False):
    """``corrupt``: ``pe`` is loaded without the host's checks; rows may reach ``max_local_rows``
    (the decoder then flags ``error`` and delivers the row's low bits)."""
    if corrupt:
        col_ptr = np.asarray(pe.col_ptr, dtype=np.int64)
        words = entry_word(np.asarray(pe.weight_idx, dtype=np.int64), np.asarray(pe.rel_index, dtype=np.int64))
    else:
        col_ptr, words = decoder_words(pe, cols, local_rows, **params)
    n_cols = cols if n_cols is None else n_cols
    entries, slots, error = decode_stream(pe.col_ptr, pe.weight_idx, pe.rel_index, columns, n_cols,
                                          params["max_local_rows"])
    row_mask = (1 << bits_for(params["max_local_rows"] - 1)) - 1
    return dict(
        name=name, **params, col_ptr=col_ptr, entries=words, columns=np.asarray(columns, dtype=np.int64),
        n_cols=n_cols, p_valid=p_valid, p_ready=p_ready, seed=seed, load=load,
        # Dropped (out-of-range) columns cost a cycle only when the pipeline is not busy:
        # timing is checked on error-free streams without back-pressure.
        check_timing=(p_valid == 1.0 and p_ready == 1.0 and not error),
        exp_row=np.asarray([e[0] & row_mask for e in entries], dtype=np.int64),
        exp_widx=np.asarray([e[1] for e in entries], dtype=np.int64),
        exp_last=np.asarray([e[2] for e in entries], dtype=np.int64),
        exp_slots=np.asarray(slots, dtype=np.int64), exp_error=int(error),
        exp_skipped=sum(1 for j in columns if j < n_cols and pe.col_ptr[j + 1] == pe.col_ptr[j]),
    )


class _Activity:
    """Counts the decoder's per-cycle ``issued`` and ``skipped`` strobes, and checks that ``busy``
    is high in every cycle in which an accepted column still has entries to deliver."""

    def __init__(self, tb, src, sink, entries_of):
        self.issued = self.skipped = 0
        self.busy_seen = False
        self.idle_while_busy = None
        self._task = cocotb.start_soon(self._run(tb, src, sink, entries_of))

    async def _run(self, tb, src, sink, entries_of):
        dut = tb.dut
        owed = n_sent = n_received = 0
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            now = tb.cycle
            self.issued += int(dut.issued.value)
            self.skipped += int(dut.skipped.value)
            self.busy_seen |= bool(dut.busy.value)
            while n_sent < len(src.sent) and src.sent[n_sent][0] <= now:
                owed += entries_of(src.sent[n_sent][1])
                n_sent += 1
            while n_received < len(sink.received) and sink.received[n_received][0] <= now:
                owed -= 1
                n_received += 1
            if owed and not dut.busy.value and self.idle_while_busy is None:
                self.idle_while_busy = (now, owed)

    def stop(self):
        self._task.cancel()


@cocotb.test()
async def decode_columns(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    timed = []
    for i, case in enumerate(cases):
        await tb.reset("error_clear", "ptr_load__en", "spmat_load__en", "cols__valid", "decoded__ready")
        if case["load"]:
            await tb.write("ptr_load", case["col_ptr"])
            await tb.write("spmat_load", case["entries"])
        dut.n_cols.value = int(case["n_cols"])
        await RisingEdge(dut.clk)
        assert dut.error.value == 0, f"case {i}: error set before any column"

        layout = CSCDecoder(**{k: int(case[k]) for k in PARAMS}).decoded.payload.shape()
        seed = int(case["seed"])
        src = tb.source("cols", p_valid=float(case["p_valid"]), seed=seed)
        sink = tb.sink("decoded", p_ready=float(case["p_ready"]), seed=seed + 1)
        col_ptr, n_cols = case["col_ptr"], int(case["n_cols"])
        activity = _Activity(tb, src, sink,
                             lambda c, cp=col_ptr, n=n_cols: int(cp[c + 1] - cp[c]) if c < n else 0)
        src.send(case["columns"])
        expected = list(zip(case["exp_row"].tolist(), case["exp_widx"].tolist(),
                            case["exp_last"].tolist(), strict=True))
        budget = 200 + 8 * (int(np.sum(case["exp_slots"])) + len(case["columns"])) / min(
            float(case["p_valid"]), float(case["p_ready"]))
        await tb.drain(sink, len(expected), budget=budget, settle=CSCDecoder.LATENCY + 8,
                       tag=f"case {i} ({case['name']})")
        activity.stop()
        assert activity.issued == len(expected), f"case {i}: issued strobed {activity.issued} times"
        assert activity.skipped == case["exp_skipped"], \
            f"case {i}: skipped strobed {activity.skipped} times, {case['exp_skipped']} empty columns"
        assert activity.busy_seen == bool(len(expected) or case["exp_skipped"]), f"case {i}: busy"
        assert dut.busy.value == 0, f"case {i}: busy still high after the last entry"
        assert activity.idle_while_busy is None, \
            f"case {i}: busy low on cycle {activity.idle_while_busy[0]} while entries were owed"

        got = unpack(layout, sink.values)
        got = list(zip(got["local_row"].tolist(), got["weight_idx"].tolist(), got["last"].astype(bool).tolist(),
                       strict=True))
        for k, (g, e) in enumerate(zip(got, expected, strict=False)):  # lengths: below
            assert g == e, f"case {i} ({case['name']}): entry {k}: RTL {g}, golden {e}"
        assert len(got) == len(expected), (
            f"case {i} ({case['name']}): RTL emitted {len(got)} entries, golden {len(expected)}")
        assert int(dut.error.value) == int(case["exp_error"]), f"case {i}: error flag {dut.error.value}"

        if case["check_timing"] and expected:
            first_in = src.sent[0][0]
            slots = np.asarray(case["exp_slots"])
            col_start = np.concatenate([[0], np.cumsum(slots)[:-1]])
            want = []
            for c, j in enumerate(case["columns"]):
                if j < case["n_cols"]:
                    n = int(case["col_ptr"][j + 1] - case["col_ptr"][j])
                    want += [first_in + CSCDecoder.LATENCY + int(col_start[c]) + p for p in range(n)]
            edges = [t for t, _ in sink.received]
            for k, (t, w) in enumerate(zip(edges, want, strict=True)):
                assert t == w, f"case {i} ({case['name']}): entry {k} left on cycle {t - first_in}, " \
                               f"expected {w - first_in} after the first column"
            timed.append({"case": i, "entries": len(expected), "cycles": edges[-1] - first_in + 1})

        if case["exp_error"]:
            await tb.pulse("error_clear")
            await tb.settle(1)
            assert dut.error.value == 0, f"case {i}: error_clear did not clear the error"
    tb.report({"entries": sum(t["entries"] for t in timed), "cycles": sum(t["cycles"] for t in timed),
               "timed": timed})
