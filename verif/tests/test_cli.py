"""``sparsehw``: every subcommand of docs/spec.md §6 is wired to the library."""

import pytest

from sw.cli import main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("prune", "pack", "sim", "verilog", "demo", "bench"):
        assert cmd in out


def test_prune_goes_through_the_top_level_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    args = ["prune", "magnitude", "--data", "digits", "--ratio", "0.5", "--out", str(out),
            "--train-epochs", "1", "--finetune-epochs", "1", "--no-progress"]
    assert main(args) == 0
    assert (out / "magnitude.json").exists() and (out / "model.safetensors").exists()
    assert main(args) == 2                      # refuses to overwrite without --force


def test_verilog_writes_every_top(tmp_path):
    assert main(["verilog", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.v"))) >= 3




def test_pack_24_goes_through_the_top_level_cli(tmp_path):
    import numpy as np

    w = np.zeros((4, 16), dtype=np.int64)
    w[:, 1], w[:, 6] = 5, -7
    np.save(tmp_path / "W.npy", w)
    assert main(["pack", "24", "--weights", str(tmp_path / "W.npy"), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "sparse24.npz").exists()


def test_pointcloud_goes_through_the_top_level_cli(tmp_path):
    import numpy as np

    coords = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]])
    np.save(tmp_path / "c.npy", coords)
    assert main(["pointcloud", "kmap", "--coords", str(tmp_path / "c.npy"), "--out", str(tmp_path / "m.npz")]) == 0
    assert (tmp_path / "m.npz").exists()


def test_demo_passes(capsys):
    assert main(["demo", "--rows", "64", "--cols", "96", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS:") == 1 and "FAIL" not in out
    assert "outputs equal numpy" in out and "cycles equal the cycle model" in out
