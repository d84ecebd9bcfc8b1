"""Integer export of a pruned, weight-shared MLP for EIE (docs/spec.md §1), and its integer reference.

Per layer ``l`` with input activations ``a ≈ A · 2**-e_in`` (int16 ``A``) and shared weights
``W ≈ C[index] · 2**-f`` (int16 codebook ``C``, entry 0 reserved = 0), the hardware computes
``acc = C[index] @ A`` exactly and ``Y = clamp(acc >> shift, -2**15, 2**15 - 1)`` (then ReLU), with
``shift = f + e_in - e_out``, so that ``Y ≈ y · 2**e_out``. Exponents are powers of two chosen per
layer: ``e_out`` from the largest activation seen on calibration data, ``f`` from the largest
codebook value, each the largest that fits int16 (``f`` lowered where needed so that
``shift <= 15``, what the hardware holds). ``index`` and ``codebook`` are exactly what
``sw.pack.pack_eie(index, n_pe)`` / ``pack_eie(C[index], n_pe, codebook=C)`` consume.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from sw.cli_io import atomic_write, check_output_file, load_arrays, npz_array, npz_item
from sw.formats import ACT_WIDTH, CODEBOOK_SIZE, INDEX_WIDTH, OUT_MAX, OUT_MIN, REL_INDEX_WIDTH, WEIGHT_WIDTH

WEIGHT_MAX = (1 << (WEIGHT_WIDTH - 1)) - 1
MAX_SHIFT = ACT_WIDTH - 1          # the output stage's shift register (docs/spec.md §3.5)
ACT_MAX = (1 << (ACT_WIDTH - 1)) - 1
FLOAT_BITS = 32


@dataclass(frozen=True)
class IntegerLayer:
    """One EIE layer: ``index`` (rows, cols) uint8 (0 = pruned), ``codebook`` int16 (≤16 entries,
    entry 0 == 0, the rest distinct and nonzero), the output ``shift``, ``relu``, and the
    power-of-two exponents of its input, codebook and output."""

    name: str
    index: np.ndarray
    codebook: np.ndarray
    shift: int
    relu: bool
    in_exp: int
    weight_exp: int
    out_exp: int

    @property
    def shape(self):
        return self.index.shape

    def weights(self) -> np.ndarray:
        """The integer weight matrix ``codebook[index]`` (int64)."""
        return self.codebook.astype(np.int64)[self.index]

    def forward(self, a: np.ndarray) -> np.ndarray:
        """docs/spec.md §1 on int activations ``a`` (cols,) or (batch, cols): exact ``acc``, arithmetic shift,
        saturation to int16, ReLU. Returns int64 values in the int16 range."""
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"layer {self.name}: activations must be integers, got dtype {a.dtype}")
        acc = _exact_matmul(a.astype(np.int64), self.weights().T)
        y = np.clip(acc >> self.shift, OUT_MIN, OUT_MAX)
        return np.maximum(y, 0) if self.relu else y


def _exact_matmul(a, b):
    """Integer ``a @ b`` via float64 BLAS when every partial sum is below 2**53 (then exact)."""
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)) * a.shape[-1]
    if bound < 2.0 ** 53:
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


@dataclass(frozen=True)
class IntegerNetwork:
    """A chain of :class:`IntegerLayer`s; inputs quantized as ``round(x · 2**input_exp)`` to int16."""

    layers: tuple
    input_exp: int

    def quantize_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return np.clip(np.rint(x * 2.0 ** self.input_exp), OUT_MIN, OUT_MAX).astype(np.int64)

    def forward(self, a: np.ndarray, upto: int | None = None) -> np.ndarray:
        """Integer forward pass of quantized inputs ``a`` through the first ``upto`` layers (all)."""
        return self.activations(a, upto)[-1]

    def activations(self, a: np.ndarray, upto: int | None = None) -> list:
        """The inputs ``a``, then the integer output of each of the first ``upto`` layers (all): every
        layer's input, then the network's output."""
        acts = [a]
        for layer in self.layers[:upto]:
            acts.append(layer.forward(acts[-1]))
        return acts

    def predict(self, x) -> np.ndarray:
        return self.forward(self.quantize_input(x)).argmax(axis=1)

    def accuracy(self, x, y) -> float:
        """Accuracy in percent of the integer pipeline on float inputs ``x``."""
        return 100.0 * float(np.mean(self.predict(x) == np.asarray(y)))

    def save(self, path, force: bool = False) -> Path:
        """Write an ``.npz``: per layer ``{name}.index``/``.codebook``/``.shift``/``.relu``/exponents.
        An existing file is replaced only with ``force`` (``OutputExists``)."""
        path = check_output_file(path, force=force, option=None)
        arrays = {"names": np.array([ly.name for ly in self.layers]), "input_exp": np.int64(self.input_exp)}
        for ly in self.layers:
            arrays |= {f"{ly.name}.index": ly.index, f"{ly.name}.codebook": ly.codebook,
                       f"{ly.name}.shift": np.int64(ly.shift), f"{ly.name}.relu": np.bool_(ly.relu),
                       f"{ly.name}.in_exp": np.int64(ly.in_exp),
                       f"{ly.name}.weight_exp": np.int64(ly.weight_exp),
                       f"{ly.name}.out_exp": np.int64(ly.out_exp)}
        return atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path) -> "IntegerNetwork":
        """Read what :meth:`save` wrote; ``ValueError`` naming the file for anything else (an
        unreadable archive, missing arrays, indices beyond a codebook, layers that do not chain)."""
        z = load_arrays(path)
        what = "a sparsehw integer export"

        def get(key, kind=None):
            if kind is None:
                return npz_array(z, key, path, what)
            return npz_item(z, key, path, kind, what)

        names = get("names")
        if names.ndim != 1 or names.size == 0 or names.dtype.kind != "U":
            raise ValueError(f"{path}: 'names' must list the layers")
        layers = []
        for n in map(str, names):
            index, codebook = get(f"{n}.index"), get(f"{n}.codebook")
            if index.ndim != 2 or not np.issubdtype(index.dtype, np.integer) or not np.issubdtype(
                    codebook.dtype, np.integer) or codebook.ndim != 1:
                raise ValueError(f"{path}: layer {n}: index must be a 2-D and codebook a 1-D integer array")
            if index.size and (index.min() < 0 or index.max() >= codebook.size):
                raise ValueError(f"{path}: layer {n}: indices must be 0..{codebook.size - 1} (the codebook's)")
            if layers and index.shape[1] != layers[-1].shape[0]:
                raise ValueError(f"{path}: layer {n} takes {index.shape[1]} inputs, the layer before it gives "
                                 f"{layers[-1].shape[0]}")
            layers.append(IntegerLayer(n, index, codebook, get(f"{n}.shift", np.integer),
                                       get(f"{n}.relu", np.bool_), get(f"{n}.in_exp", np.integer),
                                       get(f"{n}.weight_exp", np.integer), get(f"{n}.out_exp", np.integer)))
        return cls(tuple(layers), get("input_exp", np.integer))


def linear_chain(model: nn.Module) -> list:
    """``[(name, Linear, relu_after)]`` of a model that is a chain of bias-free Linear layers with
    ReLUs (flatten/dropout/identity allowed); ``ValueError`` naming what does not fit EIE."""
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"integer export needs a torch.fx-traceable model: {e}") from e
    modules = dict(model.named_modules())
    chain, prev = [], None
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            prev = node if node.op == "placeholder" else prev
            continue
        if node.args[:1] != (prev,) or len(node.users) != 1:
            raise ValueError(f"integer export needs a plain chain of layers; {node.name} branches")
        m = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(m, nn.Linear):
            if m.bias is not None:
                raise ValueError(f"layer {node.target} has a bias; EIE's output stage (docs/spec.md §1) has none — "
                                 "use a bias-free model")
            chain.append([node.target, m, False])
        elif isinstance(m, nn.ReLU) or (node.op == "call_function" and node.target in (F.relu, torch.relu)):
            if not chain or chain[-1][2]:
                raise ValueError(f"{node.name}: integer export needs each ReLU right after a Linear layer")
            chain[-1][2] = True
        elif isinstance(m, (nn.Dropout, nn.Identity)) or (isinstance(m, nn.Flatten) and not chain):
            pass
        else:
            raise ValueError(f"integer export supports chains of Linear and ReLU layers (EIE's matrix-vector "
                             f"layers); {node.name} ({node.op} {node.target}) is neither")
        prev = node
    if not chain:
        raise ValueError(f"{type(model).__name__} has no Linear layer to export")
    return [tuple(c) for c in chain]


def _exp_for(max_abs: float, limit: int) -> int:
    """The largest ``e`` with ``max_abs · 2**e <= limit``."""
    if max_abs <= 0:
        return 0
    return math.floor(math.log2(limit / max_abs))


def _integer_codebook(name, module, notes, f_max: int):
    """``(index, codebook, f)``: the layer's centroids scaled by ``2**f``, ``f`` the largest that fits
    int16 and at most ``f_max``."""
    if not hasattr(module, "weight_index"):
        raise ValueError(f"layer {name} is not weight-shared; run sw.prune.share.share_weights first")
    centroids = module.codebook.detach().double().numpy()
    index = module.weight_index.numpy()
    if centroids.size > CODEBOOK_SIZE - 1:
        raise ValueError(f"layer {name} has {centroids.size} shared values; the {INDEX_WIDTH}-bit index "
                         "allows "
                         f"{CODEBOOK_SIZE - 1} (plus the reserved 0)")
    used = np.unique(index[index > 0])
    f = _exp_for(float(np.abs(centroids[used - 1]).max(initial=0.0)), WEIGHT_MAX)
    if f > f_max:
        notes.append(f"layer {name}: codebook scale 2**{f_max} instead of 2**{f} so that its shift fits "
                     f"0..{MAX_SHIFT}")
        f = f_max
    q = np.zeros(centroids.size + 1, dtype=np.int64)
    q[1:] = np.rint(centroids * 2.0 ** f)
    values = np.unique(q[used])
    values = values[values != 0]
    if np.any(q[used] == 0):
        notes.append(f"layer {name}: a shared value rounds to 0 in int16 and its weights become pruned")
    codebook = np.concatenate([[0], values]).astype(np.int16)
    lut = np.zeros(q.size, dtype=np.uint8)
    lut[used] = np.searchsorted(codebook[1:], q[used]) + 1
    lut[used[q[used] == 0]] = 0
    return lut[index].astype(np.uint8), codebook, f


@torch.no_grad()
def export_integer(model: nn.Module, calib_x, notes: list | None = None) -> IntegerNetwork:
    """Export a weight-shared, bias-free Linear/ReLU chain to integers. ``calib_x``: float inputs
    (training data) whose largest activations set each layer's power-of-two activation scale."""
    notes = [] if notes is None else notes
    chain = linear_chain(model)
    x = torch.as_tensor(np.asarray(calib_x, dtype=np.float32))
    was_training = model.training
    model.eval()
    outs = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outs.__setitem__(n, o)) for n, m, _ in chain]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    e_in = _exp_for(float(x.abs().max()), ACT_MAX)
    input_exp, layers = e_in, []
    for name, module, relu in chain:
        y = outs[name].clamp(min=0) if relu else outs[name]
        e_out = _exp_for(float(y.abs().max()), ACT_MAX)
        index, codebook, f = _integer_codebook(name, module, notes, MAX_SHIFT + e_out - e_in)
        shift = f + e_in - e_out
        if shift < 0:
            e_out, shift = f + e_in, 0
        layers.append(IntegerLayer(name, index, codebook, int(shift), bool(relu), int(e_in), int(f),
                                   int(e_out)))
        e_in = e_out
    return IntegerNetwork(tuple(layers), int(input_exp))


def storage_bits(net: IntegerNetwork, n_pe: int = 1) -> dict:
    """Deep Compression's storage count of ``net`` packed for ``n_pe`` PEs (docs/spec.md §2): per stored entry
    (padding included) a weight index and a relative index, plus each codebook, against 32-bit
    dense weights. Column pointers are reported apart (Deep Compression does not count them)."""
    from sw.pack.eie import pack_eie

    rows = []
    for ly in net.layers:
        packed = pack_eie(ly.index, n_pe)
        entries = packed.n_entries
        ptr_bits = max(1, int(entries).bit_length())
        rows.append({"layer": ly.name, "shape": list(ly.shape), "nonzero": int(np.count_nonzero(ly.index)),
                     "entries": entries, "padding": packed.n_padding,
                     "dense_bits": int(ly.index.size) * FLOAT_BITS,
                     "weight_bits": entries * INDEX_WIDTH, "index_bits": entries * REL_INDEX_WIDTH,
                     "codebook_bits": int(ly.codebook.size) * WEIGHT_WIDTH,
                     "col_ptr_bits": n_pe * (ly.shape[1] + 1) * ptr_bits})
    for r in rows:
        r["compressed_bits"] = r["weight_bits"] + r["index_bits"] + r["codebook_bits"]
        r["ratio"] = r["dense_bits"] / r["compressed_bits"]
    dense = sum(r["dense_bits"] for r in rows)
    comp = sum(r["compressed_bits"] for r in rows)
    ptr = sum(r["col_ptr_bits"] for r in rows)
    return {"n_pe": n_pe, "layers": rows, "dense_bits": dense, "compressed_bits": comp, "ratio": dense / comp,
            "col_ptr_bits": ptr, "ratio_with_col_ptr": dense / (comp + ptr)}
