"""Hardware latency as a pruning resource.

:class:`EIECycles` packs every layer of a bias-free Linear/ReLU chain for ``n_pe`` PEs (docs/spec.md §2,
padding entries included), runs ``x`` through the float model and feeds each layer's nonzero
input activations to :func:`sw.cyclemodel.eie.array_timing` — the model checked cycle for cycle
against the array RTL. The resource is the mean over the samples of the summed layer cycles, so
it sees what MAC counts do not: activation sparsity, load imbalance across PEs, padding, and the
broadcast stalls of a full queue. Usable as NetAdapt's ``resource``.

Latency lookup tables (:class:`EIETable`, :class:`Sparse24Table`) give a per-layer hardware cost
for any model of Linear and Conv2d layers (CNNs included), NetAdapt's and AMC's way: one entry per
layer shape, computed once and cached on disk. A layer runs on the hardware as a GEMM
(:class:`GemmShape`): a Linear layer is one matrix–vector product of its ``(out, in)`` matrix; a
Conv2d lowered by im2col is its ``(out_channels, in_channels · kh · kw)`` matrix applied at every
output position, one matrix–vector product per position (a grouped convolution: ``groups`` such
matrices of ``out/groups`` rows and ``in/groups · kh · kw`` columns). Channel pruning changes only
the shape, so a table's key is the pruned shape ``"{out}x{k}x{positions}"``: a pruning ratio —
the kept fraction of a layer's output and input channels — enters through the channel counts it
leaves (``floor(fraction × n)``, at least 1, as channel pruning rounds), and ratios that leave the
same counts share one entry. Everything else (the hardware's parameters, the assumed densities)
names the cache file. Tables run no model: only the shapes matter.
"""

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import sw.cyclemodel.eie
import sw.pack.eie
from sw.cli_io import atomic_write
from sw.cyclemodel.eie import array_timing, layer_work
from sw.cyclemodel.sparse24 import MAC_LATENCY, sparse_cycles
from sw.formats import MAC24_GROUPS, QUEUE_DEPTH
from sw.models.train import cache_dir
from sw.pack.eie import pack_eie
from sw.prune.export import linear_chain
from sw.prune.graph import prunable_layers
from sw.prune.report import output_positions


class EIECycles:
    """``EIECycles(x)(model)``: mean EIE array cycles of ``model`` over the rows of ``x``."""

    def __init__(self, x, n_pe: int = 64, queue_depth: int = QUEUE_DEPTH, lnzd_width: int = 8):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"x must be a batch of samples (n, ...) with n >= 1, got shape {x.shape}")
        for name, v in (("n_pe", n_pe), ("queue_depth", queue_depth), ("lnzd_width", lnzd_width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.x = x.reshape(x.shape[0], -1)
        self.n_pe, self.queue_depth, self.lnzd_width = int(n_pe), int(queue_depth), int(lnzd_width)

    def layer_cycles(self, model) -> np.ndarray:
        """``(samples, layers)`` cycles of every layer for every sample."""
        chain = linear_chain(model)
        weights = []
        with torch.no_grad():
            for _, layer, relu in chain:
                w = layer.weight.detach().cpu().numpy().astype(np.float64)
                weights.append((w, pack_eie((w != 0).astype(np.int64), self.n_pe), relu))
        out = np.zeros((self.x.shape[0], len(weights)), dtype=np.int64)
        for s, a in enumerate(self.x.astype(np.float64)):
            if a.shape[0] != weights[0][0].shape[1]:
                raise ValueError(f"samples have {a.shape[0]} features, the first layer takes "
                                 f"{weights[0][0].shape[1]}")
            for k, (w, packed, relu) in enumerate(weights):
                entries, cols = layer_work(packed, a)
                out[s, k] = array_timing(entries, cols, packed.cols, queue_depth=self.queue_depth,
                                         lnzd_width=self.lnzd_width).cycles
                a = w @ a
                if relu:
                    a = np.maximum(a, 0.0)
        return out

    def __call__(self, model) -> float:
        return float(self.layer_cycles(model).sum(axis=1).mean())


# ---------------------------------------------------------------- latency lookup tables

@dataclass(frozen=True)
class GemmShape:
    """A layer as the hardware runs it: ``groups`` independent ``out × k`` matrices, each applied to
    ``positions`` input vectors (1 for a Linear layer; a Conv2d's output positions)."""

    out: int
    k: int
    positions: int = 1
    groups: int = 1

    @property
    def key(self) -> str:
        """The table key of one group's matrix over all positions (``groups`` multiplies it)."""
        return f"{self.out}x{self.k}x{self.positions}"


def kept_count(fraction: float, n: int) -> int:
    """Channels (or features) kept of ``n`` when a ``fraction`` of them is kept, rounded as channel
    pruning rounds (``sw.prune.amc.apply_ratios``): ``floor(fraction × n)``, at least 1."""
    if not -1e-9 <= fraction <= 1 + 1e-9:      # float noise of a computed fraction is tolerated
        raise ValueError(f"a kept fraction must be in [0, 1], got {fraction!r}")
    return max(1, min(n, int(math.floor(fraction * n + 1e-9))))


def layer_shape(layer, positions: int | None = None) -> GemmShape:
    """The :class:`GemmShape` of an ``nn.Linear`` (``positions`` default 1) or an ``nn.Conv2d``
    (``positions``, its output positions ``H_out · W_out``, required)."""
    if isinstance(layer, nn.Linear):
        return GemmShape(layer.out_features, layer.in_features, 1 if positions is None else int(positions))
    if isinstance(layer, nn.Conv2d):
        if positions is None:
            raise ValueError("a Conv2d's cost depends on its output positions: pass positions=H_out*W_out "
                             "(or cost the whole model)")
        g = layer.groups
        return GemmShape(layer.out_channels // g, layer.in_channels // g * math.prod(layer.kernel_size),
                         int(positions), g)
    raise ValueError(f"expected an nn.Linear or nn.Conv2d, got {type(layer).__name__}")


def gemm_shapes(model, example=None) -> dict:
    """``{name: GemmShape}`` of every Linear and Conv2d layer of ``model``, in definition order; the
    output positions come from one forward pass of ``example`` (default: zeros of
    ``model.input_shape``: ``report.output_positions``)."""
    positions = output_positions(model, example)
    return {n: layer_shape(m, positions.get(n, 1)) for n, m in prunable_layers(model).items()}


def latency_cache_dir() -> Path:
    """Where tables are cached: ``latency/`` in the repository's cache directory
    (``$SPARSEHW_CACHE`` if set, else ``~/.cache/sparsehw``; :func:`sw.models.train.cache_dir`)."""
    return cache_dir() / "latency"


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _density(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not 0 < v <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {v!r}")
    return float(v)


class LatencyTable:
    """Cycles per layer shape for one hardware configuration, cached on disk.

    ``table.layer_cycles(layer_or_shape)``: one layer's cycles; ``table(model)``: the sum over
    the model's Linear and Conv2d layers (layers run one after another), usable as NetAdapt's
    ``resource``; ``table.layer_cost_fn(model)``: AMC's ``layer_cost(name, out_kept, in_kept)``.

    The cache is one JSON file per hardware and parameter set, ``<cache_dir>/<hardware>-<digest>.json``
    (``cache_dir`` default :func:`latency_cache_dir`; the digest is of :attr:`params`, which
    include a digest of the cycle model's source, so a changed model never reads stale entries).
    It is read on first use and rewritten atomically (merged with what is on disk then) whenever
    new entries were computed; an unreadable or foreign file is ignored and replaced. ``cache=False``:
    memory only.
    """

    hardware = ""

    def __init__(self, *, cache: bool = True, cache_dir=None):
        self.cache = bool(cache)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.entries: dict = {}
        self._loaded = False
        self._new = False

    # -- what subclasses provide
    @property
    def params(self) -> dict:
        """The hardware's and the table's parameters (JSON values); they name the cache file."""
        raise NotImplementedError

    def _compute(self, shape: GemmShape) -> float:
        """Cycles of one group's matrix over ``shape.positions`` vectors."""
        raise NotImplementedError

    # -- the cache
    @property
    def path(self) -> Path:
        blob = json.dumps({"hardware": self.hardware, **self.params}, sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return (self.cache_dir or latency_cache_dir()) / f"{self.hardware}-{digest}.json"

    def _read(self) -> dict:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not (isinstance(doc, dict) and doc.get("hardware") == self.hardware and doc.get("params") == self.params
                and isinstance(doc.get("entries"), dict)):
            return {}
        return {k: float(v) for k, v in doc["entries"].items() if isinstance(v, (int, float))}

    def _load(self):
        if not self._loaded:
            self._loaded = True
            if self.cache:
                self.entries = {**self._read(), **self.entries}

    def save(self) -> None:
        """Write the entries computed since the last save (merged with the file's) atomically."""
        if not (self.cache and self._new):
            return
        self.entries = {**self._read(), **self.entries}
        doc = {"hardware": self.hardware, "params": self.params,
               "entries": dict(sorted(self.entries.items()))}
        atomic_write(self.path, lambda f: f.write(json.dumps(doc, indent=1).encode()))
        self._new = False

    # -- lookups
    def _entry(self, shape: GemmShape) -> float:
        self._load()
        key = shape.key
        if key not in self.entries:
            self.entries[key] = float(self._compute(GemmShape(shape.out, shape.k, shape.positions)))
            self._new = True
        return shape.groups * self.entries[key]

    def _total(self, shapes) -> float:
        try:
            return float(sum(self._entry(s) for s in shapes))
        finally:
            self.save()

    def layer_cycles(self, layer, positions: int | None = None) -> float:
        """Cycles of one layer: a :class:`GemmShape`, a tuple ``(out, k[, positions[, groups]])``,
        an ``nn.Linear``, or an ``nn.Conv2d`` with its output ``positions``."""
        if isinstance(layer, GemmShape):
            shape = layer
        elif isinstance(layer, tuple | list):
            if not 2 <= len(layer) <= 4:
                raise ValueError(f"a layer shape is (out, k[, positions[, groups]]), got {layer!r}")
            names = ("out", "k", "positions", "groups")[:len(layer)]
            shape = GemmShape(*(_positive_int(n, v) for n, v in zip(names, layer, strict=True)))
        else:
            shape = layer_shape(layer, positions)
        return self._total([shape])

    def __call__(self, model, example=None) -> float:
        """Cycles of ``model``: the sum of its Linear and Conv2d layers' entries."""
        return self._total(gemm_shapes(model, example).values())

    def layer_cost_fn(self, model, example=None):
        """``layer_cost(name, out_kept, in_kept) -> cycles`` for AMC: layer ``name`` of ``model``
        (any Linear or Conv2d) with the fractions ``out_kept`` of its output and ``in_kept`` of its
        input channels (a Linear's features) kept, each rounded by :func:`kept_count`. A grouped
        convolution loses whole groups (docs/spec.md §1c): ``kept_count(in_kept, groups)`` groups
        of unchanged size. ``layer_cost(n, 1, 1)`` summed over the layers is ``table(model)``."""
        shapes = gemm_shapes(model, example)
        modules = dict(model.named_modules())

        def layer_cost(name: str, out_kept: float, in_kept: float) -> float:
            if name not in shapes:
                raise ValueError(f"unknown layer {name!r}; the Linear/Conv2d layers are {', '.join(shapes)}")
            s, m = shapes[name], modules[name]
            if isinstance(m, nn.Linear):
                shape = GemmShape(kept_count(out_kept, m.out_features), kept_count(in_kept, m.in_features),
                                  s.positions)
            elif s.groups == 1:
                shape = GemmShape(kept_count(out_kept, m.out_channels),
                                  kept_count(in_kept, m.in_channels) * math.prod(m.kernel_size), s.positions)
            else:                       # grouped: whole groups go, each keeps its size
                kept_count(out_kept, m.out_channels)                    # checks the fraction
                shape = GemmShape(s.out, s.k, s.positions, kept_count(in_kept, s.groups))
            return self._total([shape])

        return layer_cost


@functools.cache
def _source_digest(*modules) -> str:
    h = hashlib.sha256()
    for m in modules:
        h.update(Path(m.__file__).read_bytes())
    return h.hexdigest()[:12]


def eie_sample(out: int, k: int, seed: int, weight_density: float, act_density: float):
    """The ``seed``-th random layer of an EIE table entry: ``(index matrix (out, k) of 0/1, x (k,))``
    with exactly ``max(1, round(weight_density · out · k))`` nonzero weights and
    ``max(1, round(act_density · k))`` nonzero activations at uniformly random places, drawn from
    ``numpy.random.default_rng([seed, out, k])`` (so an entry never depends on which were computed
    before it)."""
    rng = np.random.default_rng([seed, out, k])
    w = np.zeros(out * k, dtype=np.int64)
    w[rng.choice(out * k, max(1, round(weight_density * out * k)), replace=False)] = 1
    x = np.zeros(k, dtype=np.float64)
    x[rng.choice(k, max(1, round(act_density * k)), replace=False)] = 1.0
    return w.reshape(out, k), x


class EIETable(LatencyTable):
    """EIE array cycles per layer shape from the exact cycle model (:func:`array_timing`).

    An entry ``(out, k, positions)`` is ``positions ×`` the mean, over ``seeds`` random layers
    (:func:`eie_sample`, seeds ``0 .. seeds − 1``), of one matrix–vector product's cycles: the
    matrix packed for ``n_pe`` PEs (padding included) and the nonzero activations broadcast,
    ``start`` to ``done`` (each product is a separate run of the array, paying its fill and
    drain). ``weight_density`` and ``act_density`` are the assumed fractions of nonzero weights
    and input activations, the same for every layer. Deterministic: the same parameters give the
    same table on every machine.
    """

    hardware = "eie"

    def __init__(self, n_pe: int = 64, queue_depth: int = QUEUE_DEPTH, lnzd_width: int = 8,
                 weight_density: float = 0.1, act_density: float = 0.5, seeds: int = 4, **kw):
        super().__init__(**kw)
        self.n_pe = _positive_int("n_pe", n_pe)
        self.queue_depth = _positive_int("queue_depth", queue_depth)
        self.lnzd_width = _positive_int("lnzd_width", lnzd_width)
        self.weight_density = _density("weight_density", weight_density)
        self.act_density = _density("act_density", act_density)
        self.seeds = _positive_int("seeds", seeds)

    @property
    def params(self) -> dict:
        return {"n_pe": self.n_pe, "queue_depth": self.queue_depth, "lnzd_width": self.lnzd_width,
                "weight_density": self.weight_density, "act_density": self.act_density, "seeds": self.seeds,
                "model": _source_digest(sw.cyclemodel.eie, sw.pack.eie)}

    def spmv_cycles(self, out: int, k: int, seed: int) -> int:
        """Cycles of one matrix–vector product on the ``seed``-th random ``out × k`` layer."""
        w, x = eie_sample(out, k, seed, self.weight_density, self.act_density)
        packed = pack_eie(w, self.n_pe)
        entries, cols = layer_work(packed, x)
        return array_timing(entries, cols, packed.cols, queue_depth=self.queue_depth,
                            lnzd_width=self.lnzd_width).cycles

    def _compute(self, shape: GemmShape) -> float:
        mean = sum(self.spmv_cycles(shape.out, shape.k, s) for s in range(self.seeds)) / self.seeds
        return shape.positions * mean


class Sparse24Table(LatencyTable):
    """2:4 ``SparseMAC(groups)`` cycles per layer shape, docs/spec.md §4.3's formula
    (:func:`sw.cyclemodel.sparse24.sparse_cycles`): the ``positions`` input vectors stream back to
    back through the ``out × k`` matrix, ``k`` padded to whole beats of ``4·groups`` weights, so an
    entry is ``positions · out · ceil(k / (4·groups)) + MAC_LATENCY``. The weights are assumed 2:4
    (every layer), the activations dense (the MAC does not skip zeros)."""

    hardware = "sparse24"

    def __init__(self, groups: int = MAC24_GROUPS, **kw):
        super().__init__(**kw)
        self.groups = _positive_int("groups", groups)

    @property
    def params(self) -> dict:
        return {"groups": self.groups, "latency": MAC_LATENCY}

    def _compute(self, shape: GemmShape) -> float:
        return sparse_cycles(shape.out, shape.k, n=shape.positions, groups=self.groups)


TABLES = {"eie-table": EIETable, "24-table": Sparse24Table}
