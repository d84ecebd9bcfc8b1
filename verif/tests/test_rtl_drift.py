"""``rtl/`` is exactly what the Amaranth source generates now, with no machine paths inside."""

from pathlib import Path

import pytest

from pyhdl.gen import TOP_CLASSES, generate, tops

RTL = Path(__file__).resolve().parents[2] / "rtl"


@pytest.mark.parametrize("cls", TOP_CLASSES, ids=[c.__name__ for c in TOP_CLASSES])
def test_committed_rtl_matches_source(cls):
    top = cls()
    path = RTL / f"{top.name}.v"
    assert path.exists(), f"{path} is missing: run `make verilog` and commit rtl/"
    assert path.read_text() == generate(top), f"{path} is stale: run `make verilog` and commit rtl/"


def test_no_stray_or_machine_specific_rtl():
    current = tops()
    names = {f"{t.name}.v" for t in current}
    for t in current:
        generate(t)   # elaborate them, or Amaranth warns that they were never used
    stray = sorted(p.name for p in RTL.glob("*.v") if p.name not in names)
    assert not stray, f"rtl/ holds files no top generates: {stray}"
    for p in RTL.glob("*.v"):
        text = p.read_text()
        for marker in ("/work/", "/home/", "/tmp/", "/root/", "site-packages"):
            assert marker not in text, f"{p} contains a machine path ({marker})"
