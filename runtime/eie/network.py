"""A network of packed layers on the EIE array RTL, for a batch of inputs: each layer's weights
are loaded once (through the host port, or in bulk, ``runtime.eie.bulk``), then every input of
the batch is loaded, run and read back; the outputs, cycle count, per-PE counters and broadcast
stalls of every (layer, input) are measured, and each layer's RTL outputs are the next layer's
inputs.

Every output is checked against a reference (by default the integer model of
``sw.prune.export``; the regression passes its golden model) and the timing, cycle for cycle,
against the exact cycle model ``sw.cyclemodel.eie``. :func:`run_layers` is what ``sparsehw sim
eie`` and the demo call; ``eie_network`` is the cocotb test that runs inside the simulator.
"""

import os
import tempfile
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from pyhdl.eie.array import Status
from runtime import sim
from runtime.eie import bulk
from runtime.eie.host import (
    ARRAY_PARAMS,
    activation_writes,
    array_for,
    check_activations,
    codebook_writes,
    config_writes,
    fit_params,
    weight_writes,
)
from runtime.payload import unpack
from runtime.scaffold import Testbench
from sw.cyclemodel.eie import array_timing, layer_work

MODULE = __name__


def model(params: dict) -> sim.Model:
    """The Verilator model of the array for ``params`` (built once; host port and bulk loading)."""
    return sim.build(array_for(params), harness=bulk.harness)


def run(model, cases, test_dir=None, *, progress: str | None = None) -> dict:
    """Run ``cases`` (:func:`make_case`) on ``model``; the bulk-load files of bulk cases are written
    under ``test_dir`` first. ``progress``: a bar of that name over every (layer, input) run."""
    test_dir = Path(test_dir or tempfile.mkdtemp(prefix="sparsehw-eie-"))
    images = (test_dir / "bulk").resolve()
    n, sim_cases = 0, []
    for case in cases:
        layer_images = case.get("bulk_images")
        case = {k: v for k, v in case.items() if k != "bulk_images"}   # the caller's case is left as it was
        if case["bulk"]:
            bulk.write_images(images, array_for(case), layer_images, first=n)
            case["bulk_first"] = n
            case["bulk_dir"] = str(images)
            n += int(case["n_layers"])
        sim_cases.append(case)
    total = sum(int(c["n_layers"]) * len(c["x0"]) for c in cases)
    return sim.run(model, MODULE, sim_cases, testcase="eie_network", test_dir=test_dir,
                   plusargs=[f"+{bulk.PLUSARG}={images}"] if n else [],
                   progress=(progress, total) if progress else None)


def reference_layer(packed, x, shift: int, relu: bool) -> np.ndarray:
    """The integer model of one layer (docs/spec.md §1): ``relu(clamp(W @ x >> shift))``."""
    from sw.pack import unpack_eie
    from sw.prune.export import IntegerLayer

    layer = IntegerLayer("layer", unpack_eie(packed), np.asarray(packed.codebook), shift, relu, 0, 0, 0)
    return layer.forward(np.asarray(x, dtype=np.int64))


def make_case(name, params: dict, layers, x, *, p_ready=1.0, seed=0, check=True, acts_first=False,
              bulk_load=False, reference=reference_layer):
    """``layers``: ``(packed, shift, relu)`` in order; ``x``: one input vector or an ``(n, cols)``
    batch. Returns the case with the reference outputs (``reference(packed, x, shift, relu)``) and
    the cycle model's predictions for every (layer, input). With ``bulk_load`` the pointer and
    sparse-matrix memories and every input vector are filled by ``$readmemh`` (:mod:`runtime.eie.bulk`),
    the codebooks and layer registers by the host port."""
    array = array_for(params)
    xs = check_activations(x, layers[0][0].cols, batch=True)
    case = dict(name=name, **{k: params[k] for k in ARRAY_PARAMS}, n_layers=len(layers), x0=xs,
                p_ready=p_ready, seed=seed, check=int(check), acts_first=int(acts_first), bulk=int(bulk_load))
    if bulk_load:
        case["bulk_images"] = []                                  # written to files by run()
    for l, (packed, shift, relu) in enumerate(layers):
        where = f"layer {l}"
        if l and packed.cols != layers[l - 1][0].rows:
            raise ValueError(f"{where}: {packed.cols} columns do not match the previous layer's "
                             f"{layers[l - 1][0].rows} rows")
        if bulk_load:
            case["bulk_images"].append(bulk.memory_images(array, packed, where=where))   # checks it fits
            writes = codebook_writes(array, packed, where=where)
        else:
            writes = weight_writes(array, packed, where=where)
        writes += config_writes(array, packed, shift, relu)
        ys, cycles, counters, stalls = [], [], [], []
        for x in xs:
            ys.append(np.asarray(reference(packed, x, shift, relu), dtype=np.int64))
            entries, cols = layer_work(packed, x)
            t = array_timing(entries, cols, packed.cols, queue_depth=params["queue_depth"],
                             lnzd_width=params["lnzd_width"])
            cycles.append(t.cycles)
            counters.append(t.counters())
            stalls.append(t.bcast_stalls)
        order = np.arange(packed.rows) if packed.row_order is None else np.asarray(packed.row_order)
        case.update({f"{l}/row_order": order.astype(np.int64),
                     f"{l}/addr": np.asarray([a for a, _ in writes], dtype=np.int64),
                     f"{l}/data": np.asarray([d for _, d in writes], dtype=np.int64),
                     f"{l}/cols": packed.cols, f"{l}/rows": packed.rows, f"{l}/exp_y": np.stack(ys),
                     f"{l}/exp_cycles": np.asarray(cycles, dtype=np.int64),
                     f"{l}/exp_counters": np.asarray(counters, dtype=np.int64),
                     f"{l}/exp_bcast_stalls": np.asarray(stalls, dtype=np.int64)})
        xs = np.stack(ys)
    return case


def run_layers(layers, x, n_pe: int, *, queue_depth: int = 8, p_ready: float = 1.0, bulk_load: bool = True,
               params: dict | None = None, progress: str | None = "layers x inputs on the RTL",
               jobs: int | None = None):
    """``layers``: ``[(packed, shift, relu)]``; ``x``: a vector or an ``(n, cols)`` batch, split over
    ``jobs`` simulators running side by side (default: one per CPU). Returns ``(y, per-layer
    measurements, params)``, ``y`` shaped like ``x`` (``(rows,)`` or ``(n, rows)``), the
    measurements' lists in batch order."""
    from concurrent.futures import ThreadPoolExecutor

    params = params or fit_params([p for p, _, _ in layers], n_pe, queue_depth=queue_depth)
    xs = check_activations(x, layers[0][0].cols, batch=True)
    chunks = np.array_split(xs, max(1, min(len(xs), jobs or os.cpu_count() or 1)))
    cases = [make_case(f"inputs {i}", params, layers, c, p_ready=p_ready, bulk_load=bulk_load)
             for i, c in enumerate(chunks)]
    m = model(params)
    with tempfile.TemporaryDirectory(prefix="sparsehw-sim-") as tmp:
        dirs = [Path(tmp) / f"part{i}" for i in range(len(cases))]
        with sim.watch(dirs, progress, len(layers) * len(xs)), ThreadPoolExecutor(len(cases)) as pool:
            parts = list(pool.map(lambda dc: run(m, [dc[1]], dc[0]), zip(dirs, cases, strict=True)))
    layers_out = [{k: [v for part in parts for v in part["cases"][0][l][k]] for k in parts[0]["cases"][0][l]}
                  for l in range(len(layers))]
    y = np.asarray(layers_out[-1]["y"], dtype=np.int64)
    return (y[0] if np.asarray(x).ndim == 1 else y), layers_out, params


def efficiency(layer_out, n_pe: int) -> float:
    """Load-balance efficiency of a layer over its batch: MAC cycles / (n_pe x cycles)."""
    busy = sum(c[0] for counters in layer_out["counters"] for c in counters)
    return busy / (n_pe * sum(layer_out["cycles"]))


def report(layers_out, n_pe) -> None:
    for l, m in enumerate(layers_out):
        n = len(m["cycles"])
        cyc = sum(m["cycles"])
        starved = sum(c[1] for counters in m["counters"] for c in counters)
        per = f" over {n} inputs ({cyc / n:,.1f} per input)" if n > 1 else ""
        print(f"layer {l}: {cyc:,} cycles{per}, broadcast stalled {sum(m['bcast_stalls']):,} cycles")
        if n == 1:
            print(f"  busy cycles per PE: {[c[0] for c in m['counters'][0]]}")
        print(f"  load-balance efficiency: {efficiency(m, n_pe):.3f} (MAC cycles / (n_pe x cycles)), "
              f"{1 - starved / (n_pe * cyc):.3f} (1 - starved / cycles)")


async def _status(dut, array, kind, pe=0) -> int:
    await RisingEdge(dut.clk)
    dut.status_addr.value = array.status_address(kind, pe)
    await ReadOnly()
    return int(dut.status_data.value)


@cocotb.test()
async def eie_network(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    report = []
    runs = n_acts = 0
    for i, case in enumerate(cases):
        array = array_for(case)
        await tb.reset("load__en", "start", "read_start", "outputs__ready", "status_addr", "bulk_load", "bulk_acts")
        xs = [[int(v) for v in x] for x in case["x0"]]
        layers = []
        for l in range(int(case["n_layers"])):
            if case["bulk"]:                    # the harness reads <dir>/<bulk_index>/*.hex
                await RisingEdge(dut.clk)
                dut.bulk_index.value = int(case["bulk_first"]) + l
                await tb.pulse("bulk_load")
            first = True
            out = {"cycles": [], "bcast_stalls": [], "counters": [], "y": []}
            for s, x in enumerate(xs):
                tag = f"case {i} ({case['name']}) layer {l}" + (f" input {s}" if len(xs) > 1 else "")
                acts = activation_writes(array, x)
                if case["acts_first"]:          # the host may load in any order
                    await tb.write("load", [d for _, d in acts], addrs=[a for a, _ in acts])
                if first:                       # the layer's weights (or codebooks) and registers, once
                    await tb.write("load", case[f"{l}/data"], addrs=case[f"{l}/addr"])
                    first = False
                if case["bulk"]:                # the RTL's own outputs of the layer before, in bulk
                    n_acts = (n_acts + 1) % (1 << bulk.INDEX_WIDTH)    # a file is rewritten before each use
                    bulk.write_activations(case["bulk_dir"], array, n_acts, x)
                    await RisingEdge(dut.clk)
                    dut.bulk_index.value = n_acts
                    await tb.pulse("bulk_acts")
                elif not case["acts_first"]:
                    await tb.write("load", [d for _, d in acts], addrs=[a for a, _ in acts])
                y = await _run_one(tb, dut, array, case, l, s, tag, out)
                out["y"].append(y)
                runs += 1
                sim.progress(runs)
            layers.append(out)
            xs = out["y"]
        report.append(layers)
    tb.report({"cases": report})


async def _run_one(tb, dut, array, case, l, s, tag, out) -> list:
    start = await tb.pulse("start")
    budget = 1000 + 20 * (len(case[f"{l}/addr"]) + case[f"{l}/cols"] * 16)
    done_seen = await tb.wait_until(lambda: dut.done.value == 1, budget, f"{tag}: not done")
    cycles = await _status(dut, array, Status.ARRAY, 0)
    stalls = await _status(dut, array, Status.ARRAY, 1)
    counters = [[await _status(dut, array, kind, k) for kind in (Status.BUSY, Status.STARVED, Status.STALLED)]
                for k in range(array.n_pe)]
    error = await _status(dut, array, Status.ARRAY, 2)
    assert error == 0, f"{tag}: error flag set"
    if case["check"]:
        want_cycles = int(case[f"{l}/exp_cycles"][s])
        assert cycles == want_cycles, f"{tag}: {cycles} cycles, model {want_cycles}"
        assert done_seen == start + cycles, f"{tag}: done seen on cycle {done_seen - start} after start"
        want = case[f"{l}/exp_counters"][s].tolist()
        assert counters == want, f"{tag}: per-PE busy/starved/stalled {counters}, model {want}"
        want_stalls = int(case[f"{l}/exp_bcast_stalls"][s])
        assert stalls == want_stalls, f"{tag}: {stalls} broadcast stalls, model {want_stalls}"
    out["cycles"].append(cycles)
    out["bcast_stalls"].append(stalls)
    out["counters"].append(counters)

    await tb.pulse("read_start")
    rows = int(case[f"{l}/rows"])
    sink = tb.sink("outputs", p_ready=float(case["p_ready"]), seed=int(case["seed"]) + l + 1000 * s)
    await tb.drain(sink, rows, budget=int(100 + 6 * rows / float(case["p_ready"])), settle=6, tag=tag)
    got = unpack(array.outputs.payload.shape(), sink.values)
    assert got["row"].tolist() == list(range(rows)), f"{tag}: rows out of order or missing"
    # The array reads back in stored row order; a balanced layer's row_order maps it back (§2.7a).
    y = [0] * rows
    for r, v in zip(case[f"{l}/row_order"].tolist(), got["value"].tolist(), strict=True):
        y[r] = v
    exp = case[f"{l}/exp_y"][s].tolist()
    bad = [r for r, (a, b) in enumerate(zip(y, exp, strict=True)) if a != b]
    assert not bad, (f"{tag}: {len(bad)} of {rows} rows differ, first rows {bad[:8]}: "
                     f"RTL {[y[r] for r in bad[:8]]}, reference {[exp[r] for r in bad[:8]]}")
    return y
