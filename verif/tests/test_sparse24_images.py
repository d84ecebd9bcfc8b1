"""``sparsehw pack 24``: the ``.npz`` and ``$readmemh`` images and the command-line form."""

import re

import numpy as np
import pytest

from sw.cli import main
from sw.pack import mask_24, pack_24, read_24_images, write_24_images
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
    with pytest.raises(FileExistsError, match="refusing to overwrite .*; pass --force"):
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

def pack24(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``sparsehw pack 24 argv``."""
    code = main(["pack", "24", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_packs(tmp_path, capsys):
    w = random_24(np.random.default_rng(3), 8, 32)
    np.save(tmp_path / "W.npy", w.astype(np.int64))
    code, out, _ = pack24(capsys, "--weights", tmp_path / "W.npy", "--out", tmp_path / "img")
    assert code == 0 and "packed 8x32 2:4" in out
    back = read_24_images(tmp_path / "img")
    assert np.array_equal(back.values, pack_24(w).values) and back.groups == 4


def test_cli_errors(tmp_path, capsys):
    w = np.ones((2, 8), dtype=np.int64)                # 4 nonzeros a group
    np.save(tmp_path / "W.npy", w)
    out = tmp_path / "img"
    code, _, err = pack24(capsys, "--weights", tmp_path / "W.npy", "--out", out)
    assert code == 2 and re.match(r"sparsehw pack 24: error: --weights \S*W.npy: row 0, group 0 .* "
                                  r"\(apply mask_24 first\); --prune applies it$", err)
    assert not out.exists()
    assert pack24(capsys, "--weights", tmp_path / "W.npy", "--out", out, "--prune", "--groups", "2")[0] == 0
    assert np.array_equal(read_24_images(out).values, np.ones((2, 4)))
    code, _, err = pack24(capsys, "--weights", tmp_path / "W.npy", "--out", out, "--prune", "--groups", "2")
    assert code == 2 and "refusing to overwrite" in err and "--force" in err
    code, _, err = pack24(capsys, "--weights", tmp_path / "W.npy", "--out", tmp_path / "g4", "--prune")
    assert code == 2 and "--groups 4" in err and "choose groups dividing K / 4 = 2" in err
    assert pack24(capsys, "--weights", tmp_path / "W.npy", "--out", out, "--prune", "--force", "--groups", "1")[0] == 0
    assert read_24_images(out).groups == 1
    np.save(tmp_path / "F.npy", np.full((2, 8), 0.5))
    code, _, err = pack24(capsys, "--weights", tmp_path / "F.npy", "--out", tmp_path / "f")
    assert code == 2 and "not an integer" in err
    code, _, err = pack24(capsys, "--weights", tmp_path / "missing.npy", "--out", tmp_path / "m")
    assert code == 2 and re.search(r"--weights \S*missing.npy: no such file", err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F.npy", "W.npy", "img"]
