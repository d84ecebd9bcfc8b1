"""``sparsehw pack 24``: the ``.npz`` and ``$readmemh`` images and the command-line form."""

import argparse

import numpy as np
import pytest

from sw.pack import mask_24, pack_24, read_24_images, write_24_images
from sw.pack.cli24 import add_parser, run
from sw.pack.images24 import META_HEX, NPZ_NAME, VALUES_HEX, image_paths


def random_24(rng, rows, k, p_drop=0.3):
    w = rng.integers(-128, 128, (rows, k))
    w = np.where(mask_24(rng.random((rows, k))), w, 0)
    return np.where(rng.random((rows, k)) < p_drop, 0, w).astype(np.int8)


def test_hex_words_by_hand(tmp_path):
    """One row, K = 8, groups = 2: one beat; weight j at bits 8j.., group g's meta at bits 4g..."""
    w = np.array([[0, -1, 0, 2, 0, 0, 0, 5]])            # groups: (1,3) -> [-1, 2]; (2,3) -> [0, 5]
    values, meta = pack_24(w)
    assert values.tolist() == [[-1, 2, 0, 5]] and meta.tolist() == [[1 | 3 << 2, 2 | 3 << 2]]
    write_24_images(values, meta, tmp_path, groups=2)
    assert (tmp_path / VALUES_HEX).read_text() == "050002ff\n"
    assert (tmp_path / META_HEX).read_text() == "ed\n"
    write_24_images(values, meta, tmp_path / "g1", groups=1)
    assert (tmp_path / "g1" / VALUES_HEX).read_text() == "02ff\n0500\n"
    assert (tmp_path / "g1" / META_HEX).read_text() == "d\ne\n"


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_round_trip(tmp_path, groups):
    rng = np.random.default_rng(groups)
    w = random_24(rng, 37, 32 * 8)
    values, meta = pack_24(w)
    paths = write_24_images(values, meta, tmp_path, groups=groups)
    assert [p.name for p in paths] == [NPZ_NAME, VALUES_HEX, META_HEX]
    lines = (tmp_path / VALUES_HEX).read_text().splitlines()
    assert len(lines) == 37 * 32 * 8 // (4 * groups) and {len(x) for x in lines} == {4 * groups}
    back = read_24_images(tmp_path)
    assert back.groups == groups
    assert np.array_equal(back.values, values) and np.array_equal(back.meta, meta)
    with np.load(tmp_path / NPZ_NAME) as z:
        assert (int(z["rows"]), int(z["k"])) == w.shape


def test_never_overwrites_without_force(tmp_path):
    rng = np.random.default_rng(1)
    v1, m1 = pack_24(random_24(rng, 4, 16))
    v2, m2 = pack_24(random_24(rng, 4, 16))
    write_24_images(v1, m1, tmp_path)
    before = {p.name: p.read_bytes() for p in image_paths(tmp_path)}
    with pytest.raises(FileExistsError, match="use force=True"):
        write_24_images(v2, m2, tmp_path)
    assert {p.name: p.read_bytes() for p in image_paths(tmp_path)} == before
    (tmp_path / NPZ_NAME).unlink()                     # one file left over is still protected
    with pytest.raises(FileExistsError, match=VALUES_HEX):
        write_24_images(v2, m2, tmp_path)
    write_24_images(v2, m2, tmp_path, force=True)
    assert np.array_equal(read_24_images(tmp_path).values, v2)


def test_bad_layers_write_nothing(tmp_path):
    values, meta = pack_24(np.zeros((2, 8), dtype=np.int8))
    with pytest.raises(ValueError, match="not a multiple of 4·groups = 16"):
        write_24_images(values, meta, tmp_path)
    with pytest.raises(ValueError, match=r"values\[0, 1\] = 200 is outside int8"):
        write_24_images(np.array([[0, 200, 0, 0], [0, 0, 0, 0]]), meta, tmp_path, groups=1)
    with pytest.raises(ValueError, match="not an integer"):
        write_24_images(values + 0.5, meta, tmp_path, groups=1)
    bad = meta.copy()
    bad[1, 0] = 3 | 3 << 2
    with pytest.raises(ValueError, match="row 1, group 0"):
        write_24_images(values, bad, tmp_path, groups=1)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        write_24_images(values, meta, tmp_path, groups=0)
    assert list(tmp_path.iterdir()) == []


def test_reader_rejects_corrupt_images(tmp_path):
    values, meta = pack_24(random_24(np.random.default_rng(2), 2, 16))
    write_24_images(values, meta, tmp_path, groups=2)
    text = (tmp_path / META_HEX).read_text()
    (tmp_path / META_HEX).write_text(("f" if text[0] != "f" else "e") + text[1:])
    with pytest.raises(ValueError, match="sparse24_meta.hex disagrees"):
        read_24_images(tmp_path)
    (tmp_path / META_HEX).write_text("zz\n" + text.split("\n", 1)[1])
    with pytest.raises(ValueError, match="line 1 is not hexadecimal"):
        read_24_images(tmp_path)
    (tmp_path / META_HEX).write_text(text + "00\n")
    with pytest.raises(ValueError, match="5 words, expected 4"):
        read_24_images(tmp_path)
    (tmp_path / META_HEX).write_text(text)
    vtext = (tmp_path / VALUES_HEX).read_text().splitlines()
    (tmp_path / VALUES_HEX).write_text("\n".join([vtext[0][:-1]] + vtext[1:]) + "\n")
    with pytest.raises(ValueError, match="line 1 has 7 hex digits, expected 8"):
        read_24_images(tmp_path)


# ---------------------------------------------------------------- the command-line form

def parse(argv):
    parser = argparse.ArgumentParser(prog="sparsehw pack")
    add_parser(parser.add_subparsers(dest="form", required=True))
    return parser.parse_args(argv)


def test_cli_packs(tmp_path, capsys):
    w = random_24(np.random.default_rng(3), 8, 32)
    np.save(tmp_path / "W.npy", w.astype(np.int64))
    args = parse(["24", "--weights", str(tmp_path / "W.npy"), "--out", str(tmp_path / "img")])
    assert args.run is run and args.groups == 4
    assert run(args) == 0
    assert "packed 8x32 2:4" in capsys.readouterr().out
    back = read_24_images(tmp_path / "img")
    assert np.array_equal(back.values, pack_24(w).values) and back.groups == 4


def test_cli_errors(tmp_path):
    w = np.ones((2, 8), dtype=np.int64)                # 4 nonzeros a group
    np.save(tmp_path / "W.npy", w)
    out = tmp_path / "img"
    with pytest.raises(SystemExit, match=r"row 0, group 0 .* \(apply mask_24 first\); --prune applies it"):
        run(parse(["24", "--weights", str(tmp_path / "W.npy"), "--out", str(out)]))
    assert not out.exists()
    assert run(parse(["24", "--weights", str(tmp_path / "W.npy"), "--out", str(out), "--prune",
                      "--groups", "2"])) == 0
    assert np.array_equal(read_24_images(out).values, np.ones((2, 4)))
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        run(parse(["24", "--weights", str(tmp_path / "W.npy"), "--out", str(out), "--prune",
                   "--groups", "2"]))
    with pytest.raises(SystemExit, match="choose groups dividing K / 4 = 2"):
        run(parse(["24", "--weights", str(tmp_path / "W.npy"), "--out", str(tmp_path / "g4"), "--prune"]))
    assert run(parse(["24", "--weights", str(tmp_path / "W.npy"), "--out", str(out), "--prune",
                      "--force", "--groups", "1"])) == 0
    assert read_24_images(out).groups == 1
    np.save(tmp_path / "F.npy", np.full((2, 8), 0.5))
    with pytest.raises(SystemExit, match="not an integer"):
        run(parse(["24", "--weights", str(tmp_path / "F.npy"), "--out", str(tmp_path / "f")]))
    with pytest.raises(SystemExit, match="No such file"):
        run(parse(["24", "--weights", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "m")]))
