"""docs/spec.md §6.2 on every ``sparsehw`` command: a bad input is one line
``sparsehw <command>: error: <what>`` on stderr naming the option or file, exit status 2, no
traceback, and the working directory exactly as it was (no output, no partial or temporary file,
old outputs intact). Validation happens before any training, Verilator build or simulation, so
none of these cases reaches the RTL."""

import os
import zipfile

import numpy as np
import pytest

from sw.cli import main
from sw.cli_io import atomic_write, new_dir, new_files
from sw.pack import pack_eie, unpack_eie
from sw.pack.images import read_eie_images, write_eie_images
from sw.prune.export import IntegerLayer, IntegerNetwork

ROOT = os.geteuid() == 0


def cli(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``sparsehw argv``, in-process."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root):
    """Every file (bytes) and directory under ``root``, hidden ones included."""
    tree = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(d, name), root)] = "dir"
        for name in files:
            p = os.path.join(d, name)
            tree[os.path.relpath(p, root)] = open(p, "rb").read()
    return tree


def tiny_network(n_layers=2, seed=0, shift=1) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    sizes = [8, 6, 5, 4][: n_layers + 1]
    layers = []
    for i, (cols, rows) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        cb = np.array([0, -3, 2, 5, 9], dtype=np.int16)
        index = np.where(rng.random((rows, cols)) < 0.5, rng.integers(1, len(cb), (rows, cols)), 0).astype(np.uint8)
        layers.append(IntegerLayer(f"fc{i + 1}", index, cb, shift, i < n_layers - 1, 0, 0, 0))
    return IntegerNetwork(tuple(layers), 4)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory of good and malformed inputs and earlier outputs; paths are relative."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    w = np.where(rng.random((6, 8)) < 0.5, rng.integers(1, 16, (6, 8)), 0)
    np.save("W.npy", w)
    np.save("Wv.npy", np.array([[0.0, 0.5], [-0.5, 0.0]]))
    np.save("W17.npy", np.array([[1, 17]]))
    np.save("Wf.npy", np.full((4, 4), 0.5))
    np.save("x.npy", np.arange(8))
    np.save("x5.npy", np.arange(5))
    w24 = np.zeros((2, 16), dtype=np.int8)
    w24[:, 1], w24[:, 6] = 5, -7
    np.save("W24.npy", w24)
    np.save("W24_3.npy", np.ones((2, 8), dtype=np.int8))           # 4 nonzeros a group: --prune fixes it
    np.save("W24_k6.npy", np.ones((2, 6), dtype=np.int8))          # K = 6: --prune cannot help
    np.save("coords.npy", np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]))
    np.save("dup.npy", np.array([[0, 0, 0], [0, 0, 0]]))
    open("empty.npy", "wb").close()
    open("empty.npz", "wb").close()
    full = open("W.npy", "rb").read()
    open("trunc.npy", "wb").write(full[: len(full) - 20])
    open("header.npy", "wb").write(full[:40])
    np.save("pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    open("text.npy", "w").write("not numpy\n")
    np.savez("arr.npz", a=np.arange(3))
    np.save("y.npy", np.zeros(3))                                   # an earlier output
    open("notes.txt", "w").write("mine\n")
    open("junk.safetensors", "w").write("junk\n")
    os.mkdir("adir")
    os.makedirs("mixed")
    open("mixed/notes.txt", "w").write("mine\n")
    write_eie_images(pack_eie(w, 2), "img")                         # an earlier image directory
    os.makedirs("net")
    write_eie_images(pack_eie(w, 2), "net/l0")
    tiny_network().save("export.npz")
    z = open("export.npz", "rb").read()
    open("export_trunc.npz", "wb").write(z[: len(z) // 2])
    np.savez("export_nonames.npz", input_exp=np.int64(3))
    z = dict(np.load("export.npz"))
    z["fc2.index"] = np.zeros((5, 7), dtype=np.uint8)       # fc1 gives 6 outputs, fc2 takes 7
    np.savez("export_nochain.npz", **z)
    return tmp_path


def corrupt_net(change):
    """A setup that damages the packed layer ``net/l0``."""
    def setup():
        change("net/l0")
    return setup


def unlink(name):
    return corrupt_net(lambda d: os.unlink(f"{d}/{name}"))


def write(name, data: bytes):
    return corrupt_net(lambda d: open(f"{d}/{name}", "wb").write(data))


def add_stale_pe():
    def setup():
        open("net/l0/spmat_pe5.hex", "w").write("00\n")
    return setup


def second_layer(rows, cols, n_pe):
    def setup():
        w = np.ones((rows, cols), dtype=np.int64)
        write_eie_images(pack_eie(w, n_pe), "net/l1")
    return setup


def read_only_dir():
    os.makedirs("ro")
    os.chmod("ro", 0o555)


def existing(*paths):
    def setup():
        for p in paths:
            os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
            open(p, "w").write("old\n")
    return setup


PE = ["pack", "eie", "--n-pe", "2"]
P24 = ["pack", "24"]
SIM = ["sim", "eie"]
SIMW = ["sim", "eie", "--weights", "W.npy", "--n-pe", "2", "--act", "x.npy"]
NET = ["sim", "eie", "--net", "net", "--act", "x.npy", "--out", "ynew.npy"]
SC = ["pointcloud", "scene"]
KM = ["pointcloud", "kmap"]
SPA = ["sim", "pointacc"]
DIGITS = ["--data", "digits", "--no-progress"]

# (id, argv, command, words the message must contain, setup)
CASES = [
    # pack eie: inputs
    ("pe-empty-weights", PE + ["--weights", "empty.npy", "--out", "o"], "pack eie", ["--weights", "empty.npy"], None),
    ("pe-truncated-weights", PE + ["--weights", "trunc.npy", "--out", "o"], "pack eie", ["--weights", "trunc.npy"],
     None),
    ("pe-header-only-weights", PE + ["--weights", "header.npy", "--out", "o"], "pack eie", ["header.npy"], None),
    ("pe-pickled-weights", PE + ["--weights", "pickled.npy", "--out", "o"], "pack eie", ["pickled.npy"], None),
    ("pe-text-weights", PE + ["--weights", "text.npy", "--out", "o"], "pack eie", ["text.npy"], None),
    ("pe-npz-weights", PE + ["--weights", "arr.npz", "--out", "o"], "pack eie", ["--weights", "arr.npz"], None),
    ("pe-missing-weights", PE + ["--weights", "nope.npy", "--out", "o"], "pack eie", ["--weights", "nope.npy"],
     None),
    ("pe-dir-weights", PE + ["--weights", "adir", "--out", "o"], "pack eie", ["--weights", "adir"], None),
    ("pe-bad-index", PE + ["--weights", "W17.npy", "--out", "o"], "pack eie", ["--weights", "W17.npy", "17"], None),
    ("pe-empty-codebook", PE + ["--weights", "Wv.npy", "--codebook", "empty.npy", "--out", "o"], "pack eie",
     ["--codebook", "empty.npy"], None),
    ("pe-codebook-entry0", PE + ["--weights", "Wv.npy", "--codebook", "1,0.5", "--out", "o"], "pack eie",
     ["--codebook", "entry 0"], None),
    ("pe-codebook-text", PE + ["--weights", "Wv.npy", "--codebook", "a,b", "--out", "o"], "pack eie",
     ["--codebook"], None),
    ("pe-n-pe-0", ["pack", "eie", "--n-pe", "0", "--weights", "W.npy", "--out", "o"], "pack eie", ["--n-pe 0"],
     None),
    ("pe-n-pe-neg", ["pack", "eie", "--n-pe", "-1", "--weights", "W.npy", "--out", "o"], "pack eie",
     ["--n-pe -1"], None),
    ("pe-n-pe-text", ["pack", "eie", "--n-pe", "two", "--weights", "W.npy", "--out", "o"], "pack eie",
     ["--n-pe"], None),
    ("pe-shift-99", PE + ["--weights", "W.npy", "--shift", "99", "--out", "o"], "pack eie", ["--shift 99", "0..15"],
     None),
    ("pe-shift-neg", PE + ["--weights", "W.npy", "--shift", "-1", "--out", "o"], "pack eie", ["--shift -1"], None),
    ("pe-no-input", PE + ["--out", "o"], "pack eie", ["--weights", "--export"], None),
    ("pe-both-inputs", PE + ["--weights", "W.npy", "--export", "export.npz", "--out", "o"], "pack eie",
     ["--weights", "--export"], None),
    # pack eie: outputs
    ("pe-out-is-file", PE + ["--weights", "W.npy", "--out", "notes.txt"], "pack eie", ["--out notes.txt"], None),
    ("pe-out-under-file", PE + ["--weights", "W.npy", "--out", "notes.txt/o"], "pack eie", ["notes.txt"], None),
    ("pe-out-foreign-file", PE + ["--weights", "W.npy", "--out", "mixed", "--force"], "pack eie",
     ["--out mixed", "notes.txt"], None),
    ("pe-out-exists", PE + ["--weights", "W.npy", "--out", "img"], "pack eie", ["--out", "img", "--force"], None),
    ("pe-out-read-only", PE + ["--weights", "W.npy", "--out", "ro/o"], "pack eie", ["--out ro/o"], read_only_dir),
    # pack eie --export
    ("pe-export-empty", PE + ["--export", "empty.npz", "--out", "o"], "pack eie", ["empty.npz"], None),
    ("pe-export-truncated", PE + ["--export", "export_trunc.npz", "--out", "o"], "pack eie", ["export_trunc.npz"],
     None),
    ("pe-export-not-export", PE + ["--export", "export_nonames.npz", "--out", "o"], "pack eie",
     ["export_nonames.npz", "names"], None),
    ("pe-export-no-chain", PE + ["--export", "export_nochain.npz", "--out", "o"], "pack eie",
     ["export_nochain.npz", "fc2 takes 7 inputs", "gives 6"], None),
    ("pe-export-npy", PE + ["--export", "W.npy", "--out", "o"], "pack eie", ["W.npy"], None),
    ("pe-export-shift-16", PE + ["--export", "export16.npz", "--out", "o"], "pack eie",
     ["--export export16.npz", "fc1", "shift 16"], lambda: tiny_network(shift=16).save("export16.npz")),
    ("pe-export-with-shift", PE + ["--export", "export.npz", "--shift", "2", "--out", "o"], "pack eie",
     ["--shift"], None),
    ("pe-export-out-exists", PE + ["--export", "export.npz", "--out", "net"], "pack eie", ["--out", "--force"],
     None),
    ("pe-export-out-images", PE + ["--export", "export.npz", "--out", "img", "--force"], "pack eie",
     ["--out img"], None),
    # pack 24
    ("p24-empty", P24 + ["--weights", "empty.npy", "--out", "o"], "pack 24", ["--weights", "empty.npy"], None),
    ("p24-truncated", P24 + ["--weights", "trunc.npy", "--out", "o"], "pack 24", ["trunc.npy"], None),
    ("p24-pickled", P24 + ["--weights", "pickled.npy", "--out", "o"], "pack 24", ["pickled.npy"], None),
    ("p24-missing", P24 + ["--weights", "nope.npy", "--out", "o"], "pack 24", ["--weights", "nope.npy"], None),
    ("p24-float", P24 + ["--weights", "Wf.npy", "--out", "o"], "pack 24", ["--weights", "not an integer"], None),
    ("p24-not-24", P24 + ["--weights", "W24_3.npy", "--out", "o", "--groups", "2"], "pack 24",
     ["--weights", "--prune applies it"], None),
    ("p24-groups-0", P24 + ["--weights", "W24.npy", "--out", "o", "--groups", "0"], "pack 24", ["--groups 0"],
     None),
    ("p24-groups-3", P24 + ["--weights", "W24.npy", "--out", "o", "--groups", "3"], "pack 24",
     ["--groups 3", "K / 4 = 4"], None),
    ("p24-out-is-file", P24 + ["--weights", "W24.npy", "--out", "notes.txt"], "pack 24", ["--out notes.txt"], None),
    ("p24-out-foreign", P24 + ["--weights", "W24.npy", "--out", "mixed", "--force"], "pack 24", ["notes.txt"],
     None),
    ("p24-out-exists", P24 + ["--weights", "W24.npy", "--out", "o"], "pack 24", ["--force"],
     existing("o/sparse24_meta.hex")),
    # sim eie --weights
    ("sim-empty-weights", SIM + ["--weights", "empty.npy", "--n-pe", "2", "--act", "x.npy", "--out", "ynew.npy"],
     "sim eie", ["--weights", "empty.npy"], None),
    ("sim-npz-weights", SIM + ["--weights", "arr.npz", "--n-pe", "2", "--act", "x.npy", "--out", "ynew.npy"],
     "sim eie", ["--weights", "arr.npz"], None),
    ("sim-float-weights", SIM + ["--weights", "Wf.npy", "--n-pe", "2", "--act", "x.npy", "--out", "ynew.npy"],
     "sim eie", ["--weights", "integer"], None),
    ("sim-empty-act", SIMW[:-1] + ["empty.npy", "--out", "ynew.npy"], "sim eie", ["--act", "empty.npy"], None),
    ("sim-truncated-act", SIMW[:-1] + ["trunc.npy", "--out", "ynew.npy"], "sim eie", ["--act", "trunc.npy"], None),
    ("sim-short-act", SIMW[:-1] + ["x5.npy", "--out", "ynew.npy"], "sim eie", ["--act", "x5.npy"], None),
    ("sim-shift-99", SIMW + ["--shift", "99", "--out", "ynew.npy"], "sim eie", ["--shift 99", "0..15"], None),
    ("sim-shift-neg", SIMW + ["--shift", "-1", "--out", "ynew.npy"], "sim eie", ["--shift -1"], None),
    ("sim-n-pe-0", SIM + ["--weights", "W.npy", "--n-pe", "0", "--act", "x.npy", "--out", "ynew.npy"], "sim eie",
     ["--n-pe 0"], None),
    ("sim-no-n-pe", SIM + ["--weights", "W.npy", "--act", "x.npy", "--out", "ynew.npy"], "sim eie", ["--n-pe"],
     None),
    ("sim-no-input", SIM + ["--act", "x.npy", "--out", "ynew.npy"], "sim eie", ["--weights", "--net"], None),
    ("sim-both-inputs", SIMW + ["--net", "net", "--out", "ynew.npy"], "sim eie", ["--weights", "--net"], None),
    ("sim-no-act", SIM + ["--weights", "W.npy", "--n-pe", "2", "--out", "ynew.npy"], "sim eie", ["--act"], None),
    ("sim-out-no-suffix", SIMW + ["--out", "ynew"], "sim eie", ["--out ynew", ".npy"], None),
    ("sim-out-exists", SIMW + ["--out", "y.npy"], "sim eie", ["y.npy", "--force"], None),
    ("sim-out-dir", SIMW + ["--out", "adir", "--force"], "sim eie", ["--out adir"], None),
    ("sim-out-dir-npy", SIMW + ["--out", "d.npy", "--force"], "sim eie", ["--out d.npy"],
     lambda: os.mkdir("d.npy")),
    ("sim-out-under-file", SIMW + ["--out", "notes.txt/y.npy"], "sim eie", ["notes.txt"], None),
    ("sim-out-read-only", SIMW + ["--out", "ro/y.npy"], "sim eie", ["--out ro/y.npy"], read_only_dir),
    # sim eie --net
    ("net-missing", SIM + ["--net", "nonet", "--act", "x.npy", "--out", "ynew.npy"], "sim eie", ["--net nonet"],
     None),
    ("net-empty", SIM + ["--net", "adir", "--act", "x.npy", "--out", "ynew.npy"], "sim eie", ["adir"], None),
    ("net-with-shift", NET + ["--shift", "2"], "sim eie", ["--shift"], None),
    ("net-truncated-npz", NET, "sim eie", ["net/l0/eie.npz"],
     corrupt_net(lambda d: open(f"{d}/eie.npz", "r+b").truncate(100))),
    ("net-empty-npz", NET, "sim eie", ["net/l0/eie.npz"], write("eie.npz", b"")),
    ("net-npz-missing-array", NET, "sim eie", ["net/l0/eie.npz", "pe1_col_ptr"],
     corrupt_net(lambda d: np.savez(f"{d}/eie.npz", **{k: v for k, v in np.load(f"{d}/eie.npz").items()
                                                       if k != "pe1_col_ptr"}))),
    ("net-binary-hex", NET, "sim eie", ["net/l0/spmat_pe0.hex"], write("spmat_pe0.hex", b"\xff\xfe\x00\x01")),
    ("net-missing-spmat", NET, "sim eie", ["net/l0/spmat_pe1.hex"], unlink("spmat_pe1.hex")),
    ("net-missing-colptr", NET, "sim eie", ["net/l0/colptr_pe0.hex"], unlink("colptr_pe0.hex")),
    ("net-missing-codebook", NET, "sim eie", ["net/l0/codebook.hex"], unlink("codebook.hex")),
    ("net-stale-pe", NET, "sim eie", ["net/l0/spmat_pe5.hex"], add_stale_pe()),
    ("net-bad-hex-value", NET, "sim eie", ["net/l0/colptr_pe1.hex"], write("colptr_pe1.hex", b"zz\n")),
    ("net-bad-row-order", NET, "sim eie", ["net/l0/eie.npz", "row_order", "not a permutation"],
     corrupt_net(lambda d: np.savez(f"{d}/eie.npz", **dict(np.load(f"{d}/eie.npz")), row_order=np.zeros(6, int)))),
    ("net-layers-do-not-chain", NET, "sim eie", ["--net net", "l1"], second_layer(4, 5, 2)),
    ("net-layers-n-pe-differ", NET, "sim eie", ["--net net", "l1"], second_layer(4, 6, 4)),
    ("net-act-empty", SIM + ["--net", "net", "--act", "empty.npy", "--out", "ynew.npy"], "sim eie",
     ["--act", "empty.npy"], None),
    # demo
    ("demo-n-pe-0", ["demo", "--out", "d", "--n-pe", "0"], "demo", ["--n-pe 0"], None),
    ("demo-n-pe-neg", ["demo", "--out", "d", "--n-pe", "-1"], "demo", ["--n-pe -1"], None),
    ("demo-digits-0", ["demo", "--out", "d", "--digits", "0"], "demo", ["--digits 0"], None),
    ("demo-digits-too-many", ["demo", "--out", "d", "--digits", "1001"], "demo", ["--digits 1001"], None),
    ("demo-no-out", ["demo"], "demo", ["--out"], None),
    ("demo-out-is-file", ["demo", "--out", "notes.txt"], "demo", ["notes.txt"], None),
    ("demo-out-foreign", ["demo", "--out", "mixed", "--force"], "demo", ["--out mixed", "notes.txt"], None),
    ("demo-out-exists", ["demo", "--out", "d"], "demo", ["--out d", "--force"], existing("d/summary.json")),
    # verilog
    ("verilog-out-is-file", ["verilog", "--out", "notes.txt"], "verilog", ["notes.txt"], None),
    ("verilog-out-under-file", ["verilog", "--out", "notes.txt/rtl"], "verilog", ["notes.txt"], None),
    ("verilog-out-exists", ["verilog", "--out", "rtl"], "verilog", ["sparse_mac_groups4.v", "--force"],
     existing("rtl/sparse_mac_groups4.v")),
    # pointcloud
    ("scene-voxel-tiny", SC + ["--voxel", "1e-300", "--out", "c.npy"], "pointcloud scene", ["--voxel"], None),
    ("scene-voxel-0", SC + ["--voxel", "0", "--out", "c.npy"], "pointcloud scene", ["--voxel 0"], None),
    ("scene-voxel-nan", SC + ["--voxel", "nan", "--out", "c.npy"], "pointcloud scene", ["--voxel nan"], None),
    ("scene-seed-neg", SC + ["--seed", "-1", "--out", "c.npy"], "pointcloud scene", ["--seed -1"], None),
    ("scene-kind", SC + ["--kind", "forest", "--out", "c.npy"], "pointcloud scene", ["--kind"], None),
    ("scene-out-no-suffix", SC + ["--out", "c"], "pointcloud scene", ["--out c", ".npy"], None),
    ("scene-out-exists", SC + ["--out", "y.npy"], "pointcloud scene", ["y.npy", "--force"], None),
    ("scene-out-dir", SC + ["--out", "adir", "--force"], "pointcloud scene", ["--out adir"], None),
    ("scene-out-under-file", SC + ["--out", "notes.txt/c.npy"], "pointcloud scene", ["notes.txt"], None),
    ("scene-out-read-only", SC + ["--out", "ro/c.npy"], "pointcloud scene", ["--out ro/c.npy"], read_only_dir),
    ("kmap-empty", KM + ["--coords", "empty.npy", "--out", "m.npz"], "pointcloud kmap", ["--coords", "empty.npy"],
     None),
    ("kmap-truncated", KM + ["--coords", "trunc.npy", "--out", "m.npz"], "pointcloud kmap", ["trunc.npy"], None),
    ("kmap-pickled", KM + ["--coords", "pickled.npy", "--out", "m.npz"], "pointcloud kmap", ["pickled.npy"], None),
    ("kmap-missing", KM + ["--coords", "nope.npy", "--out", "m.npz"], "pointcloud kmap", ["--coords", "nope.npy"],
     None),
    ("kmap-duplicates", KM + ["--coords", "dup.npy", "--out", "m.npz"], "pointcloud kmap",
     ["--coords dup.npy", "duplicate"], None),
    ("kmap-kernel-even", KM + ["--coords", "coords.npy", "--kernel-size", "4", "--out", "m.npz"],
     "pointcloud kmap", ["--kernel-size 4"], None),
    ("kmap-kernel-0", KM + ["--coords", "coords.npy", "--kernel-size", "0", "--out", "m.npz"], "pointcloud kmap",
     ["--kernel-size 0"], None),
    ("kmap-stride-3", KM + ["--coords", "coords.npy", "--stride", "3", "--out", "m.npz"], "pointcloud kmap",
     ["--stride"], None),
    # sim pointacc: all refused before the Verilator build
    ("spa-empty", SPA + ["--coords", "empty.npy", "--out", "m.npz"], "sim pointacc", ["--coords", "empty.npy"],
     None),
    ("spa-missing", SPA + ["--coords", "nope.npy", "--out", "m.npz"], "sim pointacc", ["--coords", "nope.npy"],
     None),
    ("spa-float", SPA + ["--coords", "Wf.npy", "--out", "m.npz"], "sim pointacc", ["--coords Wf.npy", "integer"],
     None),
    ("spa-no-points", SPA + ["--coords", "empty3.npy", "--out", "m.npz"], "sim pointacc",
     ["--coords empty3.npy", "empty"], lambda: np.save("empty3.npy", np.zeros((0, 3), dtype=np.int64))),
    ("spa-key-range", SPA + ["--coords", "far.npy", "--out", "m.npz"], "sim pointacc",
     ["--coords far.npy", "row 1", "key range"], lambda: np.save("far.npy", np.array([[0, 0, 0], [1, 40000, 2]]))),
    ("spa-batch-range", SPA + ["--coords", "b.npy", "--out", "m.npz"], "sim pointacc",
     ["--coords b.npy", "batch index 256"], lambda: np.save("b.npy", np.array([[0, 0, 0, 0], [256, 0, 0, 0]]))),
    ("spa-too-many", SPA + ["--coords", "big.npy", "--out", "m.npz"], "sim pointacc",
     ["--coords big.npy", "at most 1,048,576"], lambda: np.save("big.npy", np.zeros(((1 << 20) + 1, 3), np.int16))),
    ("spa-duplicates", SPA + ["--coords", "dup.npy", "--out", "m.npz"], "sim pointacc",
     ["--coords dup.npy", "duplicate"], None),
    ("spa-stride-3", SPA + ["--coords", "coords.npy", "--stride", "3", "--out", "m.npz"], "sim pointacc",
     ["--stride"], None),
    ("spa-kernel-even", SPA + ["--coords", "coords.npy", "--kernel-size", "4", "--out", "m.npz"], "sim pointacc",
     ["--kernel-size 4"], None),
    ("spa-width-6", SPA + ["--coords", "coords.npy", "--width", "6", "--out", "m.npz"], "sim pointacc",
     ["--width", "power of two"], None),
    ("spa-p-ready-0", SPA + ["--coords", "coords.npy", "--p-ready", "0", "--out", "m.npz"], "sim pointacc",
     ["--p-ready 0"], None),
    ("spa-seed-neg", SPA + ["--coords", "coords.npy", "--seed", "-1", "--out", "m.npz"], "sim pointacc",
     ["--seed -1"], None),
    ("spa-out-no-suffix", SPA + ["--coords", "coords.npy", "--out", "m"], "sim pointacc", ["--out m", ".npz"], None),
    ("spa-out-exists", SPA + ["--coords", "coords.npy", "--out", "arr.npz"], "sim pointacc", ["arr.npz", "--force"],
     None),
    ("spa-out-read-only", SPA + ["--coords", "coords.npy", "--out", "ro/m.npz"], "sim pointacc", ["--out ro/m.npz"],
     read_only_dir),
    ("kmap-out-no-suffix", KM + ["--coords", "coords.npy", "--out", "m"], "pointcloud kmap", ["--out m", ".npz"],
     None),
    ("kmap-out-exists", KM + ["--coords", "coords.npy", "--out", "arr.npz"], "pointcloud kmap",
     ["arr.npz", "--force"], None),
    ("kmap-out-dir", KM + ["--coords", "coords.npy", "--out", "d.npz", "--force"], "pointcloud kmap",
     ["--out d.npz"], lambda: os.mkdir("d.npz")),
    ("kmap-out-under-file", KM + ["--coords", "coords.npy", "--out", "notes.txt/m.npz"], "pointcloud kmap",
     ["notes.txt"], None),
    # prune: arguments and files are checked before any training, for every method
    ("prune-sensitivity-ratios", ["prune", "sensitivity", "--out", "o", "--ratios", "0.5,1.5"] + DIGITS,
     "prune sensitivity", ["--ratios"], None),
    ("prune-sensitivity-target", ["prune", "sensitivity", "--out", "o", "--target", "2"] + DIGITS,
     "prune sensitivity", ["--target 2"], None),
    ("prune-magnitude-ratio", ["prune", "magnitude", "--out", "o", "--ratio", "1.5"] + DIGITS, "prune magnitude",
     ["--ratio 1.5"], None),
    ("prune-magnitude-ratios-layer", ["prune", "magnitude", "--out", "o", "--ratios", "fc9=0.5"] + DIGITS,
     "prune magnitude", ["--ratios", "'fc9'"], None),
    ("prune-magnitude-ratios-form", ["prune", "magnitude", "--out", "o", "--ratios", "fc1:0.5"] + DIGITS,
     "prune magnitude", ["--ratios", "layer=ratio"], None),
    ("prune-magnitude-finetune", ["prune", "magnitude", "--out", "o", "--ratio", "0.5", "--finetune-epochs", "-3"]
     + DIGITS, "prune magnitude", ["--finetune-epochs -3"], None),
    ("prune-channel-ratio", ["prune", "channel", "--out", "o", "--ratio", "-0.1"] + DIGITS, "prune channel",
     ["--ratio -0.1"], None),
    ("prune-channel-layer", ["prune", "channel", "--out", "o", "--ratio", "0.5", "--layers", "fc3"] + DIGITS,
     "prune channel", ["fc3"], None),
    ("prune-nm", ["prune", "nm", "--out", "o", "--n", "3", "--m", "2"] + DIGITS, "prune nm", ["--n 3", "--m 2"],
     None),
    ("prune-nm-m", ["prune", "nm", "--out", "o", "--n", "2", "--m", "7"] + DIGITS, "prune nm", ["m=7"], None),
    ("prune-slim-ratio", ["prune", "slim", "--out", "o", "--ratio", "1"] + DIGITS, "prune slim", ["--ratio 1"],
     None),
    ("prune-slim-mlp", ["prune", "slim", "--out", "o", "--ratio", "0.5", "--model", "lenet300"] + DIGITS,
     "prune slim", ["BatchNorm"], None),
    ("prune-iterative-steps", ["prune", "iterative", "--out", "o", "--ratio", "0.5", "--steps", "1"] + DIGITS,
     "prune iterative", ["--steps 1"], None),
    ("prune-netadapt-step", ["prune", "netadapt", "--out", "o", "--target", "0.6", "--step", "0.9"] + DIGITS,
     "prune netadapt", ["--step 0.9"], None),
    ("prune-netadapt-samples", ["prune", "netadapt", "--out", "o", "--target", "0.6", "--model", "lenet300",
                                "--resource", "eie-cycles", "--samples", "100000"] + DIGITS,
     "prune netadapt", ["--samples 100000"], None),
    ("prune-amc-episodes", ["prune", "amc", "--out", "o", "--target", "0.5", "--episodes", "0"] + DIGITS,
     "prune amc", ["--episodes 0"], None),
    ("prune-amc-max-ratio", ["prune", "amc", "--out", "o", "--target", "0.5", "--max-ratio", "1"] + DIGITS,
     "prune amc", ["--max-ratio 1"], None),
    ("prune-amc-eval-samples", ["prune", "amc", "--out", "o", "--target", "0.5", "--eval-samples", "0"] + DIGITS,
     "prune amc", ["--eval-samples 0"], None),
    ("prune-share-bits", ["prune", "share", "--out", "o", "--bits", "5"] + DIGITS, "prune share", ["--bits 5"],
     None),
    ("prune-share-cnn", ["prune", "share", "--out", "o", "--model", "cnn"] + DIGITS, "prune share", ["Linear"],
     None),
    ("prune-load-junk", ["prune", "share", "--out", "o", "--load", "junk.safetensors"] + DIGITS, "prune share",
     ["--load", "junk.safetensors"], None),
    ("prune-load-empty", ["prune", "share", "--out", "o", "--load", "empty.npy"] + DIGITS, "prune share",
     ["--load", "empty.npy"], None),
    ("prune-load-missing", ["prune", "magnitude", "--out", "o", "--ratio", "0.5", "--load", "no.safetensors"]
     + DIGITS, "prune magnitude", ["--load", "no.safetensors"], None),
    ("prune-load-dir", ["prune", "magnitude", "--out", "o", "--ratio", "0.5", "--load", "adir"] + DIGITS,
     "prune magnitude", ["--load adir"], None),
    ("prune-seed", ["prune", "magnitude", "--out", "o", "--ratio", "0.5", "--seed", "-1"] + DIGITS,
     "prune magnitude", ["--seed -1"], None),
    ("prune-train-epochs", ["prune", "magnitude", "--out", "o", "--ratio", "0.5", "--train-epochs", "0"] + DIGITS,
     "prune magnitude", ["--train-epochs 0"], None),
    ("prune-out-is-file", ["prune", "magnitude", "--out", "notes.txt", "--ratio", "0.5"] + DIGITS,
     "prune magnitude", ["--out notes.txt"], None),
    ("prune-out-under-file", ["prune", "magnitude", "--out", "notes.txt/o", "--ratio", "0.5"] + DIGITS,
     "prune magnitude", ["notes.txt"], None),
    ("prune-out-exists", ["prune", "magnitude", "--out", "o", "--ratio", "0.5"] + DIGITS, "prune magnitude",
     ["o/magnitude.json", "--force"], existing("o/magnitude.json")),
    ("prune-out-read-only", ["prune", "magnitude", "--out", "ro/o", "--ratio", "0.5"] + DIGITS, "prune magnitude",
     ["--out ro/o"], read_only_dir),
    ("prune-unknown-method", ["prune", "lottery", "--out", "o"], "prune", ["lottery"], None),
    # bench
    ("bench-unknown", ["bench", "nosuch"], "bench", ["nosuch"], None),
]


@pytest.mark.parametrize("argv, command, words, setup", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(work, capsys, monkeypatch, argv, command, words, setup):
    if setup is not None:
        setup()
    if setup is read_only_dir and ROOT:             # root may write anywhere: deny it as the kernel would others
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and not (
            mode & os.W_OK and os.path.realpath(p) == os.path.realpath(work / "ro")))
    before = snapshot(work)
    code, out, err = cli(argv, capsys)
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sparsehw {command}: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert snapshot(work) == before


def test_pack_24_suggests_prune_only_when_it_works(work, capsys):
    code, _, err = cli(P24 + ["--weights", "W24_k6.npy", "--out", "o"], capsys)
    assert code == 2 and "not a multiple of 4" in err and "--prune" not in err


def test_unknown_top_level_command_names_sparsehw(capsys):
    code, _, err = cli(["frobnicate"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("sparsehw: error: ")


# ---------------------------------------------------------------- --force replaces outputs as a whole

def test_pack_eie_force_replaces_the_image_directory(work, capsys):
    assert cli(PE[:2] + ["--n-pe", "4", "--weights", "W.npy", "--out", "o"], capsys)[0] == 0
    assert len(list((work / "o").glob("spmat_pe*.hex"))) == 4
    assert cli(PE + ["--weights", "W.npy", "--out", "o", "--force"], capsys)[0] == 0      # fewer PEs
    assert sorted(os.listdir("o")) == ["codebook.hex", "colptr_pe0.hex", "colptr_pe1.hex", "eie.npz",
                                       "spmat_pe0.hex", "spmat_pe1.hex"]
    assert read_eie_images("o")[0].n_pe == 2
    assert cli(PE + ["--weights", "Wv.npy", "--codebook", "0,0.5,-0.5", "--out", "o", "--force"], capsys)[0] == 0
    assert "codebook.hex" not in os.listdir("o")                                           # real codebook
    assert [p for p in os.listdir(".") if p.startswith(".")] == []


def test_pack_24_force_replaces_the_image_directory(work, capsys):
    assert cli(P24 + ["--weights", "W24.npy", "--out", "o", "--groups", "1"], capsys)[0] == 0
    assert cli(P24 + ["--weights", "W24.npy", "--out", "o", "--force"], capsys)[0] == 0
    assert sorted(os.listdir("o")) == ["sparse24.npz", "sparse24_meta.hex", "sparse24_values.hex"]
    assert [p for p in os.listdir(".") if p.startswith(".")] == []


def test_file_outputs_are_replaced_only_with_force_and_reported_by_name(work, capsys):
    code, out, _ = cli(SC + ["--voxel", "0.5", "--out", "c.npy"], capsys)
    assert code == 0 and "wrote c.npy" in out
    first = open("c.npy", "rb").read()
    assert cli(SC + ["--voxel", "0.5", "--out", "c.npy"], capsys)[0] == 2
    assert open("c.npy", "rb").read() == first
    assert cli(SC + ["--voxel", "0.25", "--out", "c.npy", "--force"], capsys)[0] == 0
    assert open("c.npy", "rb").read() != first
    code, out, _ = cli(KM + ["--coords", "coords.npy", "--out", "new/m.npz"], capsys)
    assert code == 0 and "wrote new/m.npz" in out and zipfile.is_zipfile("new/m.npz")
    assert [p for p in os.listdir(".") if p.startswith(".")] == []


# ---------------------------------------------------------------- export.npz -> packed network

def test_pack_eie_export_writes_a_network_directory_that_round_trips(work, capsys):
    net = tiny_network(3)
    net.save("net3.npz")
    code, out, _ = cli(PE + ["--export", "net3.npz", "--out", "layers"], capsys)
    assert code == 0 and "sparsehw sim eie --net layers" in out
    assert sorted(os.listdir("layers")) == ["00_fc1", "01_fc2", "02_fc3"]
    x = np.random.default_rng(1).integers(-100, 100, (5, net.layers[0].shape[1]))
    a = x
    for d, layer in zip(sorted(os.listdir("layers")), net.layers, strict=True):
        packed, shift, relu = read_eie_images(f"layers/{d}")
        assert (packed.n_pe, shift, relu) == (2, layer.shift, layer.relu)
        assert np.array_equal(packed.weights(), layer.weights())
        a = IntegerLayer(d, unpack_eie(packed), np.asarray(packed.codebook), shift, relu, 0, 0, 0).forward(a)
    assert np.array_equal(a, net.forward(x))
    code, out, _ = cli(PE + ["--export", "net3.npz", "--out", "balanced", "--balance"], capsys)
    assert code == 0 and "--balance" in out
    for d, layer in zip(sorted(os.listdir("balanced")), net.layers, strict=True):
        packed = read_eie_images(f"balanced/{d}")[0]
        assert np.array_equal(packed.weights(), layer.weights())               # original row order
        assert packed.reordered and sorted(packed.row_order) == list(range(layer.shape[0]))
    tiny_network(1).save("net1.npz")
    assert cli(PE + ["--export", "net1.npz", "--out", "layers"], capsys)[0] == 2
    assert cli(PE + ["--export", "net1.npz", "--out", "layers", "--force"], capsys)[0] == 0
    assert os.listdir("layers") == ["00_fc1"]                                # no layer of the old network left


# ---------------------------------------------------------------- the helpers themselves

def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError), new_dir(target) as tmp:
        (tmp / "new").write_text("half")
        raise RuntimeError
    with pytest.raises(RuntimeError), new_files(target) as stage:
        (stage / "new").write_text("half")
        raise RuntimeError
    with pytest.raises(RuntimeError), new_dir(tmp_path / "a" / "b" / "c"):
        raise RuntimeError

    def half(f):
        f.write(b"half")
        raise RuntimeError
    with pytest.raises(RuntimeError):
        atomic_write(target / "old", half)
    assert snapshot(tmp_path) == {"d": "dir", "d/old": b"old"}
