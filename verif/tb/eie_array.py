"""Testbench of the EIE array: plays the host driver's load-port writes for each layer of a
network, runs it, checks every output against the golden model and the cycle count, per-PE
counters and broadcast stalls against the exact cycle model; each layer's RTL outputs are the
next layer's inputs.
"""

import time

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from pyhdl.eie.array import Status
from sw.cyclemodel.eie import array_timing, layer_work, useful_macs
from verif.golden.eie_layer import layer as golden_layer
from verif.harness import bench, sim
from verif.harness.eie_driver import (
    ARRAY_PARAMS,
    activation_writes,
    array_for,
    check_activations,
    config_writes,
    weight_writes,
)
from verif.harness.stream import StreamSink

MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    return sim.run(model, MODULE, cases, testcase="eie_network", test_dir=test_dir)


def make_case(name, params: dict, layers, x, *, p_ready=1.0, seed=0, check=True, acts_first=False):
    """``layers``: ``(packed, shift, relu)`` in order. Returns the case with the golden outputs
    and the cycle model's predictions of every layer."""
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
        y = np.asarray(golden_layer(packed.weights().astype(np.int64).tolist(), x.tolist(), shift, relu),
                       dtype=np.int64)
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


async def _write(dut, addr, data):
    for a, d in zip(addr, data, strict=True):
        await RisingEdge(dut.clk)
        dut.load__addr.value = int(a)
        dut.load__data.value = int(d)
        dut.load__en.value = 1
    await RisingEdge(dut.clk)
    dut.load__en.value = 0


async def _status(dut, array, kind, pe=0) -> int:
    await RisingEdge(dut.clk)
    dut.status_addr.value = array.status_address(kind, pe)
    await ReadOnly()
    return int(dut.status_data.value)


@cocotb.test()
async def eie_network(dut):
    cases = sim.load_case()
    period = bench.start_clock(dut)
    wall0 = time.perf_counter()
    report = []
    for i, case in enumerate(cases):
        array = array_for(case)
        out_f = bench.fields(array.outputs.payload.shape())
        await RisingEdge(dut.clk)
        for sig in ("load__en", "start", "read_start", "outputs__ready"):
            getattr(dut, sig).value = 0
        dut.status_addr.value = 0
        await bench.reset(dut)
        x = [int(v) for v in case["x0"]]
        layers = []
        for l in range(int(case["n_layers"])):
            tag = f"case {i} ({case['name']}) layer {l}"
            acts = activation_writes(array, x)
            if case["acts_first"]:          # the host may load in any order
                await _write(dut, [a for a, _ in acts], [d for _, d in acts])
            await _write(dut, case[f"{l}/addr"], case[f"{l}/data"])
            if not case["acts_first"]:
                await _write(dut, [a for a, _ in acts], [d for _, d in acts])
            await RisingEdge(dut.clk)
            dut.start.value = 1
            start = bench.cycle_of(period) + 1
            await RisingEdge(dut.clk)
            dut.start.value = 0
            budget = 1000 + 20 * (len(case[f"{l}/addr"]) + case[f"{l}/cols"])
            for _ in range(budget):
                await RisingEdge(dut.clk)
                await ReadOnly()
                if dut.done.value == 1:
                    break
            assert dut.done.value == 1, f"{tag}: not done after {budget} cycles"
            done_seen = bench.cycle_of(period)
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

            await RisingEdge(dut.clk)
            dut.read_start.value = 1
            await RisingEdge(dut.clk)
            dut.read_start.value = 0
            rows = int(case[f"{l}/rows"])
            sink = StreamSink(dut, "outputs", dut.clk, period, p_ready=float(case["p_ready"]),
                              seed=int(case["seed"]) + l)
            for _ in range(int(100 + 6 * rows / float(case["p_ready"]))):
                await RisingEdge(dut.clk)
                if len(sink.received) >= rows:
                    break
            await bench.settle(dut, 6)
            sink.stop()
            got = [bench.unpack(v, out_f) for _, v in sink.received]
            assert [g["row"] for g in got] == list(range(rows)), f"{tag}: rows out of order or missing"
            y = [bench.signed(g["value"], out_f["value"][1]) for g in got]
            exp = case[f"{l}/exp_y"].tolist()
            bad = [r for r, (a, b) in enumerate(zip(y, exp, strict=True)) if a != b]
            assert not bad, (f"{tag}: {len(bad)} of {rows} rows differ, first rows {bad[:8]}: "
                             f"RTL {[y[r] for r in bad[:8]]}, golden {[exp[r] for r in bad[:8]]}")
            layers.append({"cycles": cycles, "bcast_stalls": stalls, "counters": counters, "y": y})
            x = y
        report.append(layers)
    sim.report({"cases": report, "sim_cycles": bench.cycle_of(period), "sim_wall_s": time.perf_counter() - wall0})
