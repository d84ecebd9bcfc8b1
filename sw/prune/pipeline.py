"""The compressed LeNet-300-100 of the end-to-end demo: Deep Compression's pipeline, cached.

    net, info = compressed_lenet()          # IntegerNetwork (docs/spec.md §1.4) and a report

The steps, each an existing piece of ``sw`` (docs/spec.md §1b, §1.4):

1. the trained baseline: ``sw.models.train.pretrained`` (LeNet-300-100 on the offline MNIST
   digits, trained on first use and cached in ``$SPARSEHW_CACHE`` or ``~/.cache/sparsehw``);
2. magnitude (L1) pruning of every Linear layer to per-layer ratios, Deep Compression's
   92 / 91 / 75 % for fc1 / fc2 / fc3 by default (91.8 % of the weights overall), reached in
   ``steps`` prune → fine-tune rounds of the geometric schedule
   (``sw.prune.finetune.prune_and_finetune``);
3. 4-bit k-means weight sharing (``sw.prune.share.share_weights``: 15 shared values per layer plus
   the reserved 0), then centroid fine-tuning (the codebooks train, the indices stay);
4. integer export (``sw.prune.export.export_integer``) calibrated on the training split.

The result — the integer network (``export.npz``), the weight-shared float model
(``model.safetensors``) and the report (``info.json``) — is cached in
``<cache>/pipelines/<model>-<data>-<key>/``, ``key`` a hash of the :class:`PipelineConfig`, the
baseline's own cache key and :data:`PIPELINE_VERSION`. The directory is built under a temporary
name beside its final one and renamed into place, so a reader never sees half of it; a damaged
or unreadable entry is rebuilt. Everything is seeded (and single-threaded, ``TrainConfig.threads``),
so a rebuild gives the same network on the same machine.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sw.models import data as datasets
from sw.models.train import BASELINES, TrainConfig, baseline_key, cache_dir, evaluate, finetune, pretrained

PIPELINE_VERSION = 1          # bump when the pipeline's code changes what a cached result means
FILES = ("export.npz", "model.safetensors", "info.json")

# Deep Compression's LeNet-300-100 (Han et al., Table 2): 8 %, 9 % and 26 % of the weights kept.
DEEP_COMPRESSION_RATIOS = (("fc1", 0.92), ("fc2", 0.91), ("fc3", 0.75))


@dataclass(frozen=True)
class PipelineConfig:
    """One compression recipe. ``baseline``: the training recipe of the dense model (default
    ``BASELINES[model]``); fine-tuning reuses it at ``lr_scale`` of its learning rate."""

    model: str = "lenet300"
    data: str = "mnist"
    baseline: TrainConfig | None = None
    ratios: tuple = DEEP_COMPRESSION_RATIOS     # ((layer, fraction of its weights pruned), ...)
    steps: int = 5                               # prune → fine-tune rounds
    epochs_per_step: int = 6
    lr_scale: float = 0.1
    bits: int = 4                                # 2**bits - 1 shared values per layer + the reserved 0
    share_epochs: int = 6                        # centroid fine-tuning
    calib_samples: int | None = None             # training samples that calibrate the export (None: all)

    def __post_init__(self):
        if self.model not in BASELINES:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(BASELINES)}")
        if self.data not in datasets.DATASETS:
            raise ValueError(f"unknown dataset {self.data!r}; expected one of {', '.join(datasets.DATASETS)}")
        for name in ("steps", "bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("epochs_per_step", "share_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not 0 < self.lr_scale <= 1:
            raise ValueError(f"lr_scale must be in (0, 1], got {self.lr_scale}")
        if not self.ratios or any(len(r) != 2 for r in self.ratios):
            raise ValueError(f"ratios must be ((layer, ratio), ...), got {self.ratios!r}")
        if self.calib_samples is not None and self.calib_samples < 1:
            raise ValueError(f"calib_samples must be >= 1 or None, got {self.calib_samples}")

    @property
    def train_config(self) -> TrainConfig:
        return self.baseline or BASELINES[self.model]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["baseline"] = asdict(self.train_config)
        d["ratios"] = {str(n): float(r) for n, r in self.ratios}
        return d

    def key(self) -> str:
        """Hash of this recipe, the baseline's cache key and :data:`PIPELINE_VERSION`."""
        blob = json.dumps({"cfg": self.to_dict(), "baseline": baseline_key(self.model, self.data, self.train_config),
                           "v": PIPELINE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def cache_path(self) -> Path:
        return cache_dir() / "pipelines" / f"{self.model}-{self.data}-{self.key()}"


@dataclass
class Compressed:
    """What :func:`compress` produces: the weight-shared float ``model``, the integer ``net`` and
    the report ``info``."""

    model: object
    net: object
    info: dict = field(default_factory=dict)


def layer_report(net) -> list:
    """Per layer of an :class:`~sw.prune.export.IntegerNetwork`: name, shape ``[rows, cols]``,
    nonzero weights, density (nonzero / rows·cols), codebook size (int16 entries including the
    reserved 0; at most 16), shift and ReLU."""
    rows = []
    for ly in net.layers:
        nz = int(np.count_nonzero(ly.index))
        rows.append({"name": ly.name, "shape": [int(s) for s in ly.shape], "nonzero": nz,
                     "density": nz / ly.index.size, "codebook_size": int(ly.codebook.size),
                     "shift": int(ly.shift), "relu": bool(ly.relu)})
    return rows


def total_density(net) -> float:
    """Nonzero weights over all weights of every layer of ``net``."""
    return (sum(int(np.count_nonzero(ly.index)) for ly in net.layers)
            / sum(int(ly.index.size) for ly in net.layers))


def compress(config: PipelineConfig | None = None, progress: bool = True) -> Compressed:
    """Run the pipeline of this module's docstring (no result cache; the baseline is cached)."""
    from sw.prune.export import export_integer
    from sw.prune.finetune import prune_and_finetune
    from sw.prune.share import share_weights

    cfg = config or PipelineConfig()
    train_cfg = cfg.train_config
    data = datasets.load(cfg.data)
    seconds = {}
    t0 = time.perf_counter()
    model, base = pretrained(cfg.model, cfg.data, train_cfg, progress=progress)
    seconds["baseline"] = time.perf_counter() - t0

    t = time.perf_counter()
    dense = evaluate(model, data.x_test, data.y_test)
    sched = prune_and_finetune(model, data, train_cfg, dict(cfg.ratios), cfg.steps, cfg.epochs_per_step,
                               lr_scale=cfg.lr_scale, name=f"prune {cfg.steps}x{cfg.epochs_per_step}",
                               progress=progress)
    seconds["prune"] = time.perf_counter() - t

    t = time.perf_counter()
    books = share_weights(model, bits=cfg.bits)
    shared_raw = evaluate(model, data.x_test, data.y_test)
    if cfg.share_epochs:
        finetune(model, data, train_cfg, cfg.share_epochs, lr_scale=cfg.lr_scale, progress=progress,
                 desc="centroid fine-tune")
    shared = evaluate(model, data.x_test, data.y_test)
    seconds["share"] = time.perf_counter() - t

    t = time.perf_counter()
    notes = []
    calib = data.x_train if cfg.calib_samples is None else data.x_train[: cfg.calib_samples]
    net = export_integer(model, calib, notes)
    integer = net.accuracy(data.x_test, data.y_test)
    seconds["export"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0

    info = {
        "config": cfg.to_dict(), "key": cfg.key(),
        "accuracy": {"dense": dense, "pruned": sched.test_acc, "shared_before_finetune": shared_raw,
                     "shared": shared, "integer": integer},
        "accuracy_split": "test",
        "baseline": {k: base.get(k) for k in ("path", "val_acc", "test_acc")},
        "schedule": sched.rows,
        "clusters_used": {n: int(b.used) for n, b in books.items()},
        "layers": layer_report(net),
        "density": total_density(net),
        "notes": notes,
        "seconds": seconds,
    }
    for row in info["layers"]:
        row["target_ratio"] = dict(cfg.ratios).get(row["name"])
    return Compressed(model, net, info)


def _load(path: Path):
    from sw.prune.export import IntegerNetwork

    info = json.loads((path / "info.json").read_text())
    return IntegerNetwork.load(path / "export.npz"), info


def _store(path: Path, result: Compressed) -> None:
    from sw.cli_io import new_dir
    from sw.models.io import save_model

    with new_dir(path) as tmp:
        result.net.save(tmp / "export.npz")
        save_model(result.model, tmp / "model.safetensors", info={"pipeline": result.info["key"]})
        (tmp / "info.json").write_text(json.dumps(result.info, indent=2, default=str))


def compressed_lenet(progress: bool = True, config: PipelineConfig | None = None, cache: bool = True):
    """The compressed LeNet-300-100 for EIE: ``(IntegerNetwork, info)``, built by :func:`compress`
    on first use and loaded from the cache after that (``cache=False``: always rebuild, write
    nothing).

    ``info``: ``accuracy`` (test split, percent: ``dense`` float baseline, ``pruned`` after the
    prune → fine-tune schedule, ``shared_before_finetune``, ``shared`` after centroid fine-tuning,
    ``integer`` the exported network), ``layers`` (per layer ``name``, ``shape`` [rows, cols],
    ``nonzero``, ``density``, ``codebook_size`` (entries incl. the reserved 0), ``shift``,
    ``relu``, ``target_ratio``), ``density`` (nonzero / all weights), ``config``, ``key``,
    ``schedule`` (per round: sparsity and validation accuracy), ``clusters_used``, export
    ``notes``, ``seconds`` of the build (``baseline``, ``prune``, ``share``, ``export``, ``total``;
    the baseline takes ~0 when it was cached already), ``cached`` (loaded rather than built),
    ``load_seconds``, ``path`` (the cache directory, holding ``model.safetensors``, the float
    weight-shared model, loadable with ``sw.models.io.load_model``).
    """
    cfg = config or PipelineConfig()
    t = time.perf_counter()
    path = cfg.cache_path()
    if cache and all((path / f).exists() for f in FILES):
        try:
            net, info = _load(path)
        except (OSError, ValueError, KeyError):     # damaged or foreign: rebuild it
            pass
        else:
            if info.get("key") == cfg.key():
                info.update(cached=True, load_seconds=time.perf_counter() - t, path=str(path))
                return net, info
    result = compress(cfg, progress=progress)
    if cache:
        _store(path, result)
    result.info.update(cached=False, path=str(path) if cache else None)
    return result.net, result.info
