# amaranth: UnusedElaboratable=no
"""Testbench of the mapping unit: case construction and the scoreboard.

The cloud runs through ``runtime.pointacc.mapping`` as a host would run it (load, ``start``,
pairs with random back-pressure when asked, ``done``, counters, sorted list read back); the
scoreboard here checks what it reports: the kernel maps (and at stride 2 the output points the unit
generated) against ``sw.pointcloud.kernel_map``, each
offset's pairs ascending by output rank, the per-offset pair counters, the stall counter against
the cycles the sink saw stalled, the duplicate error flag, and, without back-pressure, ``CYCLES``
and ``SORT_CYCLES`` (and when ``done`` rose) against the cycle model (``sw.cyclemodel.pointacc``)
built from the blocks' own cycle models.
"""

import numpy as np

from pyhdl.pointacc.mapping_unit import MappingUnit
from runtime.pointacc import mapping
from runtime.pointacc.host import check_result, kernel_maps, output_coords, unit_for
from sw.cyclemodel.pointacc import UnitTiming, unit_cycles
from sw.pointcloud import KeyFormat, kernel_map
from verif.golden.pointacc import downsample_beat_times, intersect_steps, merge_cycles
from verif.tb.pointacc_intersect import job_cycles


def timing(unit: MappingUnit) -> UnitTiming:
    """The unit's timing from its blocks' constants and cycle models."""
    b = unit.blocks()
    w, cb = unit.width, unit.coord_bits
    merger = b["merger"]
    return UnitTiming(
        width=w, phase_latency=unit.PHASE_LATENCY, sort_latency=b["key_pack"].latency + b["sorter"].latency,
        check_latency=unit.CHECK_LATENCY,
        count_latency=unit.COUNT_LATENCY,
        merge_cycles=lambda jobs: merge_cycles(jobs, w, depth=merger.depth, latency=merger.latency, entry=merger.entry),
        intersect_cycles=lambda jobs, down: job_cycles([intersect_steps(i, o, d, cb, w, down) for i, o, d in jobs],
                                                      b["intersect"].latency),
        downsample_cycles=lambda keys: downsample_beat_times(keys, w, b["downsampler"].latency)[-1])


def make_case(name, coords, params, *, stride=1, p_ready=1.0, seed=0, duplicate=False):
    """A cloud to map at ``stride`` with what the unit must return; ``duplicate``: the cloud holds
    a repeated row (the unit must flag it)."""
    unit = unit_for(params)
    c = np.asarray(coords, dtype=np.int64)
    extra = {"duplicate": int(duplicate)}
    fmt = KeyFormat(unit.coord_bits, unit.batch_bits)
    keys = fmt.pack(c) if stride == 1 else fmt.down(fmt.pack(c))
    model = unit_cycles(keys, unit.offsets, timing(unit), downsample=stride == 2)
    assert model.duplicate == duplicate
    extra.update(exp_cycles=model.total, exp_sort_cycles=model.sort_total)
    if not duplicate:
        out, maps = kernel_map(c, unit.kernel_size, stride, coord_bits=unit.coord_bits, batch_bits=unit.batch_bits)
        assert model.n_out == len(out)
        extra.update(exp_len=np.array([len(mp) for mp in maps], dtype=np.int64),
                     exp_pairs=np.concatenate(maps).reshape(-1, 2), exp_out=out)
    return mapping.make_case(name, c, params, stride=stride, p_ready=p_ready, seed=seed, **extra)


def check(case, r) -> dict:
    """Judge one case's run (``runtime.pointacc.mapping.run``); returns ``points``, ``cycles``,
    ``sort_cycles``, ``stalls`` and ``pairs``."""
    name, unit, stride = str(case["name"]), unit_for(case), int(case["stride"])
    count = r["counters"]
    lists = [np.asarray(lst, dtype=np.int64).reshape(-1, 2) for lst in r["lists"]]
    assert count["n_points"] == int(case["n_points"])
    assert count["stalls"] == r["sink_stalls"], \
        f"{name}: {count['stalls']} stalls counted, the sink saw {r['sink_stalls']}"
    if case["duplicate"]:
        try:
            check_result(count["error"])
            raise AssertionError(f"{name}: duplicate coordinates not flagged")
        except ValueError:
            pass
        assert not lists, f"{name}: pairs emitted despite the error"
    else:
        assert count["error"] == 0, f"{name}: error flag set"
        assert len(lists) == unit.n_offsets, f"{name}: {len(lists)} pair lists"
        out = case["exp_out"]
        assert count["n_out"] == len(out), f"{name}: N_OUT {count['n_out']}, kernel_map {len(out)} outputs"
        if stride == 1:
            maps = kernel_maps(lists, r["order"])
        else:
            maps = kernel_maps(lists)
            got = output_coords(unit, r["keys"], out.shape[1])
            assert np.array_equal(got, out), f"{name}: output points {got[:3]}, kernel_map {out[:3]}"
        starts = np.concatenate([[0], np.cumsum(case["exp_len"])])
        for k in range(unit.n_offsets):
            want = case["exp_pairs"][starts[k]:starts[k + 1]]
            assert count[f"pairs{k}"] == len(lists[k]), f"{name}: offset {k}: pair counter"
            assert np.all(np.diff(lists[k][:, 1]) > 0), f"{name}: offset {k}: pairs not ascending by output rank"
            assert np.array_equal(maps[k], want), f"{name}: offset {k}: RTL {maps[k][:4]}, kernel_map {want[:4]}"
    if float(case["p_ready"]) == 1.0:
        want = (int(case["exp_cycles"]), int(case["exp_sort_cycles"]))
        assert (count["cycles"], count["sort_cycles"]) == want, \
            f"{name}: cycles, sort cycles {count['cycles']}, {count['sort_cycles']}; the cycle model {want}"
        assert r["done_after_start"] == count["cycles"], f"{name}: done seen {r['done_after_start']} after start"
    return {"points": int(case["n_points"]), "cycles": count["cycles"], "sort_cycles": count["sort_cycles"],
            "stalls": count["stalls"], "pairs": int(sum(len(x) for x in lists))}


def run(model, cases, test_dir=None) -> dict:
    """Run and judge ``cases``; per case name, :func:`check`'s summary."""
    out = mapping.run(model, cases, test_dir)
    return {str(c["name"]): check(c, out[str(c["name"])]) for c in cases}
