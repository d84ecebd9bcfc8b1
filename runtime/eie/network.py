"""A network of packed layers on the EIE array RTL: the host driver's load-port writes are
played for each layer, the array runs, and its outputs, cycle count, per-PE counters and
broadcast stalls are read back; each layer's RTL outputs are the next layer's inputs.

Every output is checked against a reference (by default the integer model of
``sw.prune.export``; the regression passes its golden model) and the timing, cycle for cycle,
against the exact cycle model ``sw.cyclemodel.eie``. :func:`run_layers` is what ``sparsehw sim
eie`` and the demo call; ``eie_network`` is the cocotb test that runs inside the simulator.
"""

import tempfile

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from pyhdl.eie.array import Status
from runtime import sim
from runtime.eie.host import (
    ARRAY_PARAMS,
    activation_writes,
    array_for,
    check_activations,
    config_writes,
    fit_params,
    weight_writes,
)
from runtime.payload import unpack
from runtime.scaffold import Testbench
from sw.cyclemodel.eie import array_timing, layer_work, useful_macs

MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    return sim.run(model, MODULE, cases, testcase="eie_network", test_dir=test_dir)


def reference_layer(packed, x, shift: int, relu: bool) -> np.ndarray:
    """The integer model of one layer (docs/spec.md §1): ``relu(clamp(W @ x >> shift))``."""
    from sw.pack import unpack_eie
    from sw.prune.export import IntegerLayer

    layer = IntegerLayer("layer", unpack_eie(packed), np.asarray(packed.codebook), shift, relu, 0, 0, 0)
    return layer.forward(np.asarray(x, dtype=np.int64))


def make_case(name, params: dict, layers, x, *, p_ready=1.0, seed=0, check=True, acts_first=False,
              reference=reference_layer):
    """``layers``: ``(packed, shift, relu)`` in order. Returns the case with the reference outputs
    (``reference(packed, x, shift, relu)``) and the cycle model's predictions of every layer."""
    array = array_for(params)
    x = check_activations(x, layers[0][0].cols)
    case = dict(name=name, **{k: params[k] for k in ARRAY_PARAMS}, n_layers=len(layers), x0=x,
                p_ready=p_ready, seed=seed, check=int(check), acts_first=int(acts_first))
    for l, (packed, shift, relu) in enumerate(layers):
        where = f"layer {l}"
        if l and packed.cols != layers[l - 1][0].rows:
            raise ValueError(f"{where}: {packed.cols} columns do not match the previous layer's "
                             f"{layers[l - 1][0].rows} rows")
        writes = weight_writes(array, packed, where=where) + config_writes(array, packed, shift, relu)
        y = np.asarray(reference(packed, x, shift, relu), dtype=np.int64)
        entries, cols = layer_work(packed, x)
        t = array_timing(entries, cols, packed.cols, queue_depth=params["queue_depth"],
                         lnzd_width=params["lnzd_width"])
        counters = np.asarray(t.counters(), dtype=np.int64)
        case.update({f"{l}/addr": np.asarray([a for a, _ in writes], dtype=np.int64),
                     f"{l}/data": np.asarray([d for _, d in writes], dtype=np.int64),
                     f"{l}/cols": packed.cols, f"{l}/rows": packed.rows, f"{l}/exp_y": y,
                     f"{l}/exp_cycles": t.cycles, f"{l}/exp_counters": counters,
                     f"{l}/exp_bcast_stalls": t.bcast_stalls,
                     f"{l}/useful": useful_macs(packed, x)})
        x = y
    return case


def run_layers(layers, x, n_pe: int, *, queue_depth: int = 8, p_ready: float = 1.0):
    """``layers``: ``[(packed, shift, relu)]``. Returns ``(y, per-layer measurements, params)``."""
    params = fit_params([p for p, _, _ in layers], n_pe, queue_depth=queue_depth)
    case = make_case("cli", params, layers, x, p_ready=p_ready)
    model = sim.build(array_for(params))
    with tempfile.TemporaryDirectory(prefix="sparsehw-sim-") as tmp:
        metrics = run(model, [case], tmp)
    layers_out = metrics["cases"][0]
    return np.asarray(layers_out[-1]["y"], dtype=np.int64), layers_out, params


def report(layers_out, n_pe) -> None:
    for l, m in enumerate(layers_out):
        busy = [c[0] for c in m["counters"]]
        starved = [c[1] for c in m["counters"]]
        cyc = m["cycles"]
        print(f"layer {l}: {cyc} cycles, broadcast stalled {m['bcast_stalls']} cycles")
        print(f"  busy cycles per PE: {busy}")
        print(f"  load-balance efficiency: {sum(busy) / (n_pe * cyc):.3f} (MAC cycles / (n_pe x cycles)), "
              f"{1 - np.mean(starved) / cyc:.3f} (1 - starved / cycles)")


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
    for i, case in enumerate(cases):
        array = array_for(case)
        await tb.reset("load__en", "start", "read_start", "outputs__ready", "status_addr")
        x = [int(v) for v in case["x0"]]
        layers = []
        for l in range(int(case["n_layers"])):
            tag = f"case {i} ({case['name']}) layer {l}"
            acts = activation_writes(array, x)
            if case["acts_first"]:          # the host may load in any order
                await tb.write("load", [d for _, d in acts], addrs=[a for a, _ in acts])
            await tb.write("load", case[f"{l}/data"], addrs=case[f"{l}/addr"])
            if not case["acts_first"]:
                await tb.write("load", [d for _, d in acts], addrs=[a for a, _ in acts])
            start = await tb.pulse("start")
            budget = 1000 + 20 * (len(case[f"{l}/addr"]) + case[f"{l}/cols"])
            done_seen = await tb.wait_until(lambda: dut.done.value == 1, budget, f"{tag}: not done")
            cycles = await _status(dut, array, Status.ARRAY, 0)
            stalls = await _status(dut, array, Status.ARRAY, 1)
            counters = [[await _status(dut, array, kind, k) for kind in (Status.BUSY, Status.STARVED, Status.STALLED)]
                        for k in range(array.n_pe)]
            error = await _status(dut, array, Status.ARRAY, 2)
            assert error == 0, f"{tag}: error flag set"
            if case["check"]:
                assert cycles == case[f"{l}/exp_cycles"], f"{tag}: {cycles} cycles, model {case[f'{l}/exp_cycles']}"
                assert done_seen == start + cycles, f"{tag}: done seen on cycle {done_seen - start} after start"
                want = case[f"{l}/exp_counters"].tolist()
                assert counters == want, f"{tag}: per-PE busy/starved/stalled {counters}, model {want}"
                assert stalls == case[f"{l}/exp_bcast_stalls"], \
                    f"{tag}: {stalls} broadcast stalls, model {case[f'{l}/exp_bcast_stalls']}"

            await tb.pulse("read_start")
            rows = int(case[f"{l}/rows"])
            sink = tb.sink("outputs", p_ready=float(case["p_ready"]), seed=int(case["seed"]) + l)
            await tb.drain(sink, rows, budget=int(100 + 6 * rows / float(case["p_ready"])), settle=6, tag=tag)
            got = unpack(array.outputs.payload.shape(), sink.values)
            assert got["row"].tolist() == list(range(rows)), f"{tag}: rows out of order or missing"
            y = got["value"].tolist()
            exp = case[f"{l}/exp_y"].tolist()
            bad = [r for r, (a, b) in enumerate(zip(y, exp, strict=True)) if a != b]
            assert not bad, (f"{tag}: {len(bad)} of {rows} rows differ, first rows {bad[:8]}: "
                             f"RTL {[y[r] for r in bad[:8]]}, reference {[exp[r] for r in bad[:8]]}")
            layers.append({"cycles": cycles, "bcast_stalls": stalls, "counters": counters, "y": y})
            x = y
        report.append(layers)
    tb.report({"cases": report})
