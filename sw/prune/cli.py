"""``sparsehw prune …``: the pruning toolkit on the command line.

Every subcommand starts from a trained model (the cached baseline of ``--model`` on ``--data``,
trained on first use, or ``--load PATH``), writes ``<command>.json`` (and PNG plots) into the
directory ``--out`` names and, when it produces a model, ``model.safetensors`` there (``share``
also ``export.npz``, which ``sparsehw pack eie --export`` packs). Arguments and the model's layers
are checked before any training; the outputs appear together when the command succeeds, and
existing ones are never overwritten without ``--force``. Each subcommand is a thin layer over
library functions (``sw.prune.*``) a user can import.

``sw.cli`` registers this with :func:`add_parser` and dispatches to :func:`run`.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from sw.cli_io import CLIError, bad_input, check_output_files, in_range, input_file, new_files
from sw.formats import INDEX_WIDTH

COMMANDS = ("sensitivity", "magnitude", "channel", "nm", "slim", "iterative", "netadapt", "amc", "share")
MODEL_FILE = "model.safetensors"


def _common(p, default_model="lenet300"):
    from sw.models.registry import MODELS

    p.add_argument("--out", required=True, type=Path, help="output directory (JSON, PNG, saved model)")
    p.add_argument("--model", default=default_model, choices=tuple(MODELS),
                   help=f"baseline to start from (default {default_model})")
    p.add_argument("--data", default="mnist", choices=("mnist", "digits"), help="dataset (default mnist)")
    p.add_argument("--load", type=Path, help="start from a model saved by an earlier command instead")
    p.add_argument("--train-epochs", type=int, help="epochs of baseline training (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="training/fine-tuning seed (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _finetune_opts(p, epochs=10):
    p.add_argument("--finetune-epochs", type=int, default=epochs,
                   help=f"fine-tuning epochs (default {epochs})")
    p.add_argument("--lr-scale", type=float, default=0.1,
                   help="fine-tuning learning rate as a fraction of training's (default 0.1; try 0.01)")


def _ratio_opts(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ratio", type=float, help="fraction of each layer's units to prune, in [0, 1)")
    g.add_argument("--ratios", help="per-layer ratios, e.g. fc1=0.92,fc2=0.91,fc3=0.74")


TABLE_RESOURCES = ("eie-table", "24-table")


def _table_opts(p):
    """Options of the latency lookup tables (``--resource eie-table|24-table``, sw/prune/latency.py)."""
    p.add_argument("--weight-density", type=float,
                   help="--resource eie-table: assumed fraction of nonzero weights, in (0, 1] (default 0.1)")
    p.add_argument("--act-density", type=float,
                   help="--resource eie-table: assumed fraction of nonzero input activations, in (0, 1] "
                        "(default 0.5)")
    p.add_argument("--mac-groups", type=int,
                   help="--resource 24-table: groups of 4 weights the 2:4 MAC takes per cycle (default 4)")


def _parallel_opts(p, tasks: str):
    """Where the search's independent ``tasks`` run (sw/prune/parallel.py): this process, a local
    pool, or Ray; the results are the same for a seed."""
    p.add_argument("--workers", type=int,
                   help=f"local worker processes for the {tasks} (default 1: this process)")
    p.add_argument("--ray", action="store_true",
                   help=f"run the {tasks} as Ray tasks: on the cluster RAY_ADDRESS names or `ray start` started on "
                        "this machine, else on a new local Ray instance (needs Ray installed)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join the running Ray cluster at ADDR (its head, e.g. HEAD:6379); implies --ray")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``prune`` and its subcommands on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    prune = subparsers.add_parser("prune", help="prune, fine-tune, share weights and export models",
                                  description=__doc__.splitlines()[0])
    sub = prune.add_subparsers(dest="prune_command", required=True, metavar="{" + ",".join(COMMANDS) + "}")

    p = sub.add_parser("sensitivity",
                       help="per-layer accuracy drop at pruning ratios 0.1 … 0.9 (plot + table)")
    _common(p)
    p.add_argument("--ratios", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", help="comma-separated ratios")
    p.add_argument("--layers", help="comma-separated layer names (default: every prunable layer)")
    p.add_argument("--granularity", default="fine", choices=("fine", "channel"))
    p.add_argument("--criterion", default="l1", choices=("l1", "l2", "bn"))
    p.add_argument("--target", type=float, help="also derive per-layer ratios for this overall sparsity")
    p.add_argument("--bn-samples", type=int, default=0,
                   help="re-estimate BatchNorm statistics on this many training samples after each pruning, "
                        "before scoring (default 0: off; without it deep BatchNorm networks saturate at chance)")

    p = sub.add_parser("magnitude", help="fine-grained pruning by weight magnitude, then fine-tuning")
    _common(p)
    _ratio_opts(p)
    p.add_argument("--scope", default="layer", choices=("layer", "global"),
                   help="rank per layer or across layers")
    p.add_argument("--criterion", default="l1", choices=("l1", "l2"))
    _finetune_opts(p)

    p = sub.add_parser("channel", help="channel/filter pruning with physical removal, then fine-tuning")
    _common(p, "cnn")
    _ratio_opts(p)
    p.add_argument("--layers", help="comma-separated layers (default: every removable layer)")
    p.add_argument("--scope", default="layer", choices=("layer", "global"))
    p.add_argument("--criterion", default="l1", choices=("l1", "l2", "bn"))
    _finetune_opts(p)

    p = sub.add_parser("nm", help="N:M structured pruning (2:4 by default), then fine-tuning")
    _common(p)
    p.add_argument("--n", type=int, default=2, help="weights kept per group (default 2)")
    p.add_argument("--m", type=int, default=4, help="group size along the input dimension (default 4)")
    p.add_argument("--layers", help="comma-separated layers (default: all)")
    _finetune_opts(p)

    p = sub.add_parser("slim", help="network slimming: BN-scale L1 training, global channel pruning, removal")
    _common(p, "cnn")
    p.add_argument("--ratio", type=float, required=True, help="fraction of BN-followed channels to remove")
    p.add_argument("--l1", type=float, default=1e-4, help="L1 strength on BN scales (default 1e-4)")
    _finetune_opts(p)

    p = sub.add_parser("iterative", help="iterative prune → fine-tune versus one-shot at the same sparsity "
                                         "(one-shot fine-tuned one round's epochs, and the iterative total)")
    _common(p)
    _ratio_opts(p)
    p.add_argument("--steps", type=int, default=5, help="prune/fine-tune rounds, >= 2 (default 5)")
    p.add_argument("--epochs-per-step", type=int, default=6, help="fine-tuning epochs per round (default 6)")
    p.add_argument("--schedule", default="geometric", choices=("geometric", "linear"))
    p.add_argument("--scope", default="layer", choices=("layer", "global"))
    p.add_argument("--lr-scale", type=float, default=0.1, help="fine-tuning lr fraction (default 0.1)")

    p = sub.add_parser("netadapt", help="NetAdapt: remove channels one layer per iteration, keeping the most "
                                        "accurate candidate, until a MAC, parameter or EIE-cycle budget is met")
    _common(p, "cnn")
    p.add_argument("--target", type=float, required=True,
                   help="resource to reach, as a fraction of the original's (e.g. 0.5)")
    p.add_argument("--step", type=float, default=0.1,
                   help="resource cut of the first iteration, as a fraction of the original's (default 0.1)")
    p.add_argument("--step-decay", type=float, default=1.0,
                   help="each iteration's cut is the previous one's times this, in (0, 1] (default 1: a constant "
                        "step); the paper's schedule is --step 0.025 --step-decay 0.96")
    p.add_argument("--resource", default="macs",
                   choices=("macs", "nonzero-macs", "params", "eie-cycles", *TABLE_RESOURCES),
                   help="dense MACs per sample, MACs with a nonzero weight (sparse models), parameter count, "
                        "EIE array cycles from the exact cycle model on validation digits (Linear/ReLU chains), "
                        "or a cached per-layer latency table of the EIE array (eie-table) or the 2:4 MAC "
                        "(24-table), which take any CNN (default macs)")
    p.add_argument("--n-pe", type=int, default=64,
                   help="PEs of the EIE array for --resource eie-cycles or eie-table (default 64)")
    _table_opts(p)
    p.add_argument("--samples", type=int, default=16,
                   help="validation digits averaged by --resource eie-cycles (default 16)")
    p.add_argument("--layers", help="comma-separated candidate layers (default: every removable layer)")
    p.add_argument("--short-epochs", type=int, default=1,
                   help="fine-tuning epochs of each candidate before comparing them (default 1)")
    _finetune_opts(p)
    _parallel_opts(p, "candidates of each iteration")

    p = sub.add_parser("amc", help="AMC: a DDPG agent (or random search) picks each layer's channel ratio "
                                   "under a MAC or latency-table budget")
    _common(p, "cnn")
    p.add_argument("--target", type=float, required=True,
                   help="resource to reach, as a fraction of the original's")
    p.add_argument("--resource", default="macs", choices=("macs", *TABLE_RESOURCES),
                   help="dense MACs, or the per-layer latency table of the EIE array (eie-table) or the 2:4 "
                        "MAC (24-table) (default macs)")
    p.add_argument("--n-pe", type=int, help="--resource eie-table: PEs of the EIE array (default 64)")
    _table_opts(p)
    p.add_argument("--search", default="ddpg", choices=("ddpg", "random"),
                   help="the DDPG agent, or random search: every action uniform, same environment and "
                        "evaluation (its episodes are the agent's warm-up's with the same seed) (default ddpg)")
    p.add_argument("--episodes", type=int, default=300, help="search episodes (default 300)")
    p.add_argument("--warmup", type=int, default=100,
                   help="episodes of random actions first (default 100; --search ddpg only)")
    p.add_argument("--max-ratio", type=float, default=0.8, help="largest ratio per layer (default 0.8)")
    p.add_argument("--eval-samples", type=int,
                   help="score each episode on this many validation samples, one fixed subset (default all)")
    p.add_argument("--bn-samples", type=int, default=0,
                   help="re-estimate BatchNorm statistics on this many training samples before scoring an "
                        "episode (default 0: off)")
    _finetune_opts(p)
    _parallel_opts(p, "random warm-up episodes")

    p = sub.add_parser("share",
                       help="k-means weight sharing, centroid fine-tuning and integer export for EIE")
    _common(p)
    p.add_argument("--bits", type=int, default=4,
                   help="index bits: 2**bits - 1 shared values + 0 (default 4)")
    p.add_argument("--ratio", type=float, help="prune to this ratio (one-shot + fine-tune) first")
    _finetune_opts(p, epochs=5)
    return prune


def _outputs(args) -> list:
    name = args.prune_command
    files = [f"{name}.json"]
    files.append(f"{name}.png")
    if name != "sensitivity":
        files.append(MODEL_FILE)
    if name == "share":
        files.append("export.npz")
    return files


def _ratio(args):
    """The ``--ratio`` or the parsed ``--ratios`` of a command that takes either."""
    return args.ratio if args.ratio is not None else args.ratios


def _layers(s):
    return None if s is None else [x.strip() for x in s.split(",") if x.strip()]


def _ratios(text: str) -> dict:
    """``--ratios fc1=0.9,fc2=0.8`` as ``{layer: ratio}``, each ratio in [0, 1)."""
    out = {}
    for item in text.split(","):
        name, eq, value = item.partition("=")
        if not eq:
            raise CLIError(f"--ratios wants layer=ratio pairs such as fc1=0.9,fc2=0.8; got {item!r}")
        try:
            ratio = float(value)
        except ValueError:
            raise CLIError(f"--ratios: {value!r} for layer {name.strip()!r} is not a number") from None
        if not 0 <= ratio < 1:
            raise CLIError(f"--ratios {item.strip()}: a ratio must be in [0, 1)")
        out[name.strip()] = ratio
    return out


def _scan_ratios(text: str) -> list:
    """``sensitivity --ratios 0.1,0.5,0.9``: increasing, distinct, each in [0, 1)."""
    try:
        ratios = [float(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise CLIError(f"--ratios must be comma-separated numbers, got {text!r}") from None
    for r in ratios:
        in_range("--ratios", r, 0, 1, "[)")
    if not ratios or sorted(set(ratios)) != ratios:
        raise CLIError(f"--ratios must be increasing and distinct, got {text!r}")
    return ratios


def _start(args, baseline: bool = True):
    """``(model, data, train_cfg, info)`` the command starts from (``model`` is None when no
    ``--load`` is given and ``baseline`` is False: the command trains its own). The command's
    layers and model are checked (:func:`_check_model`) before any training."""
    from sw.models import data as datasets
    from sw.models import registry
    from sw.models.io import load_model
    from sw.models.train import BASELINES, TrainConfig, pretrained

    data = datasets.load(args.data)
    cfg = BASELINES.get(args.model, TrainConfig())
    if args.train_epochs is not None:
        cfg = replace(cfg, epochs=args.train_epochs)
    cfg = replace(cfg, seed=args.seed)
    if args.load is not None:
        with bad_input("--load", sep=" "):
            model, meta = load_model(args.load)
        if tuple(model.input_shape) != data.input_shape:
            raise CLIError(f"--load {args.load} expects inputs {tuple(model.input_shape)}, but {args.data} has "
                           f"{data.input_shape}")
        _check_model(args, model, data)
        return model, data, cfg, {"loaded": str(args.load)}
    _check_model(args, registry.build(args.model, data.input_shape, data.classes, seed=cfg.seed), data)
    if not baseline:
        return None, data, cfg, {}
    model, info = pretrained(args.model, args.data, cfg, progress=not args.no_progress)
    return model, data, cfg, {"baseline": {k: v for k, v in info.items() if k != "history"}}


def _check_args(args) -> None:
    """The numeric options of every command, before anything is loaded or trained."""
    lt1 = dict(lo=0, hi=1, interval="[)")
    checks = {"train_epochs": dict(lo=1), "seed": dict(lo=0), "finetune_epochs": dict(lo=0),
              "lr_scale": dict(lo=0, interval="(]"), "ratio": lt1, "bits": dict(lo=1, hi=INDEX_WIDTH),
              "l1": dict(lo=0), "steps": dict(lo=2), "epochs_per_step": dict(lo=0),
              "n_pe": dict(lo=1), "samples": dict(lo=1), "short_epochs": dict(lo=0), "episodes": dict(lo=1),
              "warmup": dict(lo=0), "max_ratio": dict(lo=0, hi=1, interval="()"),
              "n": dict(lo=1), "m": dict(lo=1), "weight_density": dict(lo=0, hi=1, interval="(]"),
              "act_density": dict(lo=0, hi=1, interval="(]"), "mac_groups": dict(lo=1),
              "step_decay": dict(lo=0, hi=1, interval="(]"), "eval_samples": dict(lo=1), "bn_samples": dict(lo=0),
              "workers": dict(lo=1)}
    for name, bounds in checks.items():
        value = getattr(args, name, None)
        if value is not None:
            in_range("--" + name.replace("_", "-"), value, **bounds)
    cmd = args.prune_command
    if cmd == "sensitivity":
        args.ratios = _scan_ratios(args.ratios)
        if args.target is not None:
            in_range("--target", args.target, 0, 1, "()")
    elif getattr(args, "ratios", None) is not None:
        args.ratios = _ratios(args.ratios)
    if cmd == "netadapt":
        from sw.prune.netadapt import schedule_iterations

        in_range("--target", args.target, 0, 1, "()")
        in_range("--step", args.step, 0, round(1 - args.target, 12), "(]")
        try:
            schedule_iterations(args.target, args.step, args.step_decay)
        except ValueError:
            raise CLIError(f"--step-decay {args.step_decay:g} with --step {args.step:g}: the cuts step × "
                           f"decay^(i-1) add up to less than step / (1 - decay) = "
                           f"{args.step / (1 - args.step_decay):.4g}, short of 1 - target = "
                           f"{1 - args.target:.4g}; raise --step or --step-decay") from None
    if cmd == "amc":
        in_range("--target", args.target, 0, 1, "()")
        if args.search == "ddpg":
            in_range("--warmup", args.warmup, 0, args.episodes - 1)
    if cmd in ("netadapt", "amc"):
        uses = {"--weight-density": "eie-table", "--act-density": "eie-table", "--mac-groups": "24-table"}
        if cmd == "amc":
            uses["--n-pe"] = "eie-table"
        for option, kind in uses.items():
            if getattr(args, option[2:].replace("-", "_")) is not None and args.resource != kind:
                raise CLIError(f"{option} applies to --resource {kind} only, not --resource {args.resource}")
    if getattr(args, "ray", False) or getattr(args, "ray_address", None):
        from sw.prune.parallel import RAY_HINT, ray_available

        option = "--ray-address" if args.ray_address else "--ray"
        if args.ray_address is not None and not args.ray_address.strip():
            raise CLIError("--ray-address wants the cluster's head address, e.g. HEAD:6379")
        if args.workers is not None:
            raise CLIError(f"--workers sizes the local pool and does not apply with {option}")
        if not ray_available():
            raise CLIError(f"{option} needs Ray, which is not installed: {RAY_HINT}")
    if cmd == "nm" and args.n > args.m:
        raise CLIError(f"--n {args.n} must be <= --m {args.m}")


def _check_model(args, model, data) -> None:
    """What depends on the model (layer names, structure EIE or slimming needs), checked on the
    untrained or loaded model, so a bad choice fails before training."""
    from sw.prune.criteria import criterion
    from sw.prune.export import linear_chain
    from sw.prune.granularity import NM, Channel, granularity
    from sw.prune.pruner import Pruner
    from sw.prune.slim import slimming_layers

    cmd = args.prune_command
    pruner = None
    if cmd == "sensitivity":
        pruner = Pruner(model, granularity(args.granularity), criterion(args.criterion), _layers(args.layers))
    elif cmd in ("magnitude", "iterative"):
        pruner = Pruner(model)
    elif cmd in ("channel", "netadapt"):
        pruner = Pruner(model, Channel(), layers=_layers(args.layers))
    elif cmd == "nm":
        pruner = Pruner(model, NM(args.n, args.m), layers=_layers(args.layers))
    elif cmd == "slim":
        slimming_layers(model)
    if cmd == "share" or (cmd == "netadapt" and args.resource == "eie-cycles"):
        linear_chain(model)     # refuse models EIE cannot run before spending time on them
    if cmd == "netadapt" and args.resource == "eie-cycles":
        in_range("--samples", args.samples, 1, len(data.x_val))
    if cmd in ("netadapt", "amc") and args.resource in TABLE_RESOURCES:
        _table(args, cache=False).layer_cost_fn(model)    # every layer has a shape (one forward pass)
    if isinstance(getattr(args, "ratios", None), dict):
        unknown = [n for n in args.ratios if n not in pruner.layers]
        if unknown:
            raise CLIError(f"--ratios: unknown layer(s) {', '.join(map(repr, unknown))}; the prunable layers "
                           f"are {', '.join(pruner.layers)}")


def _acc(model, data):
    from sw.models.train import evaluate

    return {"val_acc": evaluate(model, data.x_val, data.y_val),
            "test_acc": evaluate(model, data.x_test, data.y_test)}


def _save(args, model, result):
    from sw.models.io import save_model

    info = {"command": args.prune_command, **result.get("accuracy", {})}
    save_model(model, args.stage / MODEL_FILE, info=info)


def _cmd_sensitivity(args, model, data, cfg, result):
    from sw.models.train import bn_subset
    from sw.prune.criteria import criterion
    from sw.prune.granularity import granularity
    from sw.prune.sensitivity import sensitivity_scan

    scan = sensitivity_scan(model, data, _layers(args.layers), args.ratios, granularity(args.granularity),
                            criterion(args.criterion), progress=not args.no_progress,
                            bn_x=bn_subset(data, args.bn_samples))
    scan.plot(args.stage / "sensitivity.png")
    result["scan"] = scan.to_dict()
    text = scan.table()
    if args.target is not None:
        result["ratios_for_target"] = scan.ratios_for(args.target)
        text += f"\n\nPer-layer ratios for {args.target:.0%} overall: " + ", ".join(
            f"{n}={r:.4f}" for n, r in result["ratios_for_target"].items())
    return text


def _plot_recovery(args, before: float, start: float, history: list, what: str = "pruning") -> None:
    """``<command>.png``: validation accuracy through fine-tuning, from right after ``what``."""
    from sw.prune.plots import line_plot

    epochs = [0] + [h["epoch"] for h in history]
    line_plot(args.stage / f"{args.prune_command}.png",
              {"fine-tuning": (epochs, [start] + [h["val_acc"] for h in history]),
               f"before {what}": ([0, epochs[-1]], [before, before])},
              "fine-tuning epoch", "val accuracy (%)", f"sparsehw prune {args.prune_command}: recovery")


def _prune_finetune(args, model, data, cfg, result, pruner, ratio, scope="layer", remove=False):
    from sw.models.train import evaluate, finetune

    before = _acc(model, data)
    report = pruner.prune(ratio, scope=scope)
    lines = [report.summary()]
    result["prune"] = report.to_dict()
    if remove:
        removal = pruner.remove()
        result["removal"] = removal.to_dict()
        lines.append(removal.summary())
    pruned = evaluate(model, data.x_val, data.y_val)
    history = finetune(model, data, cfg, args.finetune_epochs, lr_scale=args.lr_scale,
                       progress=not args.no_progress) if args.finetune_epochs > 0 else []
    result["accuracy"] = {"before": before, "val_after_prune": pruned, "after_finetune": _acc(model, data)}
    result["finetune"] = {"epochs": args.finetune_epochs, "lr_scale": args.lr_scale, "history": history}
    a = result["accuracy"]
    lines.append(f"test accuracy {before['test_acc']:.2f}% → {a['after_finetune']['test_acc']:.2f}% after "
                 f"{args.finetune_epochs} epochs fine-tuning at lr × {args.lr_scale:g} (val right after "
                 f"pruning {pruned:.2f}%)")
    _plot_recovery(args, before["val_acc"], pruned, history)
    _save(args, model, result)
    return "\n".join(lines)


def _cmd_magnitude(args, model, data, cfg, result):
    from sw.prune.criteria import criterion
    from sw.prune.granularity import FineGrained
    from sw.prune.pruner import Pruner

    pruner = Pruner(model, FineGrained(), criterion(args.criterion))
    return _prune_finetune(args, model, data, cfg, result, pruner, _ratio(args), args.scope)


def _cmd_channel(args, model, data, cfg, result):
    from sw.prune.criteria import criterion
    from sw.prune.granularity import Channel
    from sw.prune.pruner import Pruner

    pruner = Pruner(model, Channel(), criterion(args.criterion), _layers(args.layers))
    return _prune_finetune(args, model, data, cfg, result, pruner, _ratio(args), args.scope, remove=True)


def _cmd_nm(args, model, data, cfg, result):
    from sw.prune.granularity import NM
    from sw.prune.pruner import Pruner

    pruner = Pruner(model, NM(args.n, args.m), layers=_layers(args.layers))
    return _prune_finetune(args, model, data, cfg, result, pruner, None)


def _cmd_slim(args, model, data, cfg, result):
    from sw.models import registry
    from sw.prune.slim import slim, train_slimming

    if model is None:
        model = registry.build(args.model, data.input_shape, data.classes, seed=cfg.seed)
        train_slimming(model, data, cfg, args.l1, progress=not args.no_progress)
    dense = _acc(model, data)
    res = slim(model, data, cfg, args.ratio, args.finetune_epochs, lr_scale=args.lr_scale,
               progress=not args.no_progress)
    result.update(res.to_dict())
    result["accuracy"] = {"slimming_trained": dense, "after_finetune": _acc(model, data)}
    _plot_recovery(args, dense["val_acc"], res.val_after_prune, res.history, "channel removal")
    _save(args, model, result)
    return "\n".join([res.prune.summary(), res.removal.summary(),
                      f"test accuracy {dense['test_acc']:.2f}% (trained with BN L1 {args.l1:g}) → "
                      f"{res.test_after_finetune:.2f}% after removal and {args.finetune_epochs} epochs "
                      "fine-tuning"])


def _cmd_iterative(args, model, data, cfg, result):
    from sw.models.train import evaluate
    from sw.prune.finetune import compare_schedules, schedule_table
    from sw.prune.plots import line_plot

    base = evaluate(model, data.x_test, data.y_test)
    cmp = compare_schedules(model, data, cfg, _ratio(args), args.steps, args.epochs_per_step,
                            lr_scale=args.lr_scale, scope=args.scope, schedule=args.schedule,
                            progress=not args.no_progress)
    result["baseline_test_acc"] = base
    result["iterative"], result["one_shot"] = cmp.iterative.to_dict(), cmp.one_shot.to_dict()
    result["one_shot_equal_epochs"] = cmp.equal_epochs.to_dict()
    result["accuracy"] = {"iterative_test_acc": cmp.iterative.test_acc, "one_shot_test_acc": cmp.one_shot.test_acc,
                          "one_shot_equal_epochs_test_acc": cmp.equal_epochs.test_acc}
    line_plot(args.stage / "iterative.png",
              {r.name: ([100 * row["sparsity"] for row in r.rows], [row["val_after_finetune"] for row in r.rows])
               for r in cmp.results},
              "weights pruned (%)", "val accuracy after fine-tuning (%)", "Iterative vs one-shot pruning")
    _save(args, cmp.models["iterative"], result)
    return f"baseline test accuracy {base:.2f}%\n" + schedule_table(base, cmp.results)


def _table(args, cache: bool = True):
    """The latency lookup table ``--resource`` names, with its options (the class defaults where
    an option is not given), cached in ``$SPARSEHW_CACHE/latency`` (``~/.cache/sparsehw/latency``)."""
    from sw.prune.latency import TABLES

    given = {"n_pe": args.n_pe, "weight_density": args.weight_density, "act_density": args.act_density}
    if args.resource == "24-table":
        given = {"groups": args.mac_groups}
    return TABLES[args.resource](**{k: v for k, v in given.items() if v is not None}, cache=cache)


def _resource_info(args, table) -> dict:
    return {"kind": args.resource} if table is None else {"kind": args.resource, "params": table.params,
                                                          "cache": str(table.path)}


def _executor(args):
    """Where the independent tasks of ``netadapt``/``amc`` run; Ray is started or joined here,
    before any training, and a failure names the option."""
    from sw.prune.parallel import executor, sequential

    if not hasattr(args, "workers"):
        return sequential()
    if not (args.ray or args.ray_address):
        return executor(workers=args.workers)
    option = f"--ray-address {args.ray_address}" if args.ray_address else "--ray"
    try:
        return executor(ray=True, address=args.ray_address)
    except Exception as e:      # ray.init: ConnectionError, ValueError, RuntimeError, ...
        raise CLIError(f"{option}: cannot start or join Ray: {e}") from None


def _cmd_netadapt(args, model, data, cfg, result):
    from sw.prune.netadapt import RESOURCES, netadapt

    table = None
    if args.resource == "eie-cycles":
        from sw.prune.latency import EIECycles

        resource = EIECycles(data.x_val[:args.samples], n_pe=args.n_pe)
    elif args.resource in TABLE_RESOURCES:
        resource = table = _table(args)
    else:
        resource = RESOURCES[args.resource]
    before = _acc(model, data)
    small, res = netadapt(model, data, cfg, args.target, args.step, short_epochs=args.short_epochs,
                          final_epochs=args.finetune_epochs, lr_scale=args.lr_scale, resource=resource,
                          layers=_layers(args.layers), progress=not args.no_progress, step_decay=args.step_decay,
                          executor=args.executor)
    r0, r1 = resource(model), resource(small)
    result["netadapt"] = res.to_dict()
    result["resource"] = {**_resource_info(args, table), "before": r0, "after": r1}
    result["accuracy"] = {"before": before, "after_finetune": _acc(small, data)}
    res.plot(args.stage / "netadapt.png", before["val_acc"], f"{args.resource} (fraction of the original's)",
             "NetAdapt search trace")
    _save(args, small, result)
    lines = [res.table(), "",
             f"{args.resource}: {r0:,.0f} → {r1:,.0f} ({res.resource:.1%}); channels "
             + ", ".join(f"{n}={c}" for n, c in res.channels.items()),
             f"test accuracy {before['test_acc']:.2f}% → {res.test_acc:.2f}% after {args.finetune_epochs} epochs "
             f"final fine-tuning (val before it {res.val_before_final:.2f}%)"]
    if res.stopped:
        lines.append(res.stopped)
    return "\n".join(lines)


def _cmd_amc(args, model, data, cfg, result):
    from sw.prune.amc import amc, random_search

    table, extra = None, {}
    if args.resource in TABLE_RESOURCES:
        table = _table(args)
        extra["layer_cost"] = table.layer_cost_fn(model)    # the budget: --target × the unpruned model's cost
    if args.search == "ddpg":
        search, extra["warmup"] = amc, args.warmup
    else:
        search = random_search
    before = _acc(model, data)
    small, res = search(model, data, cfg, args.target, episodes=args.episodes, max_ratio=args.max_ratio,
                        final_epochs=args.finetune_epochs, lr_scale=args.lr_scale, seed=args.seed,
                        progress=not args.no_progress, eval_samples=args.eval_samples,
                        bn_samples=args.bn_samples, executor=args.executor, **extra)
    result["amc"] = res.to_dict()
    result["resource"] = _resource_info(args, table)
    result["accuracy"] = {"before": before, "after_finetune": _acc(small, data)}
    res.plot(args.stage / "amc.png", extra.get("warmup", 0))
    _save(args, small, result)
    best = res.best
    return "\n".join([
        f"best of {len(res.episodes)} episodes (episode {best['episode']}): ratios "
        + ", ".join(f"{n}={r:.3f}" for n, r in best["ratios"].items())
        + f"; val {best['val_acc']:.2f}% before fine-tuning"
        + (f" (on {args.eval_samples} validation samples; all of them: {res.val_before_finetune:.2f}%)"
           if args.eval_samples else ""),
        f"MACs {res.macs:.1%} of the original; channels " + ", ".join(f"{n}={c}" for n, c in res.channels.items()),
        f"test accuracy {before['test_acc']:.2f}% → {res.test_acc:.2f}% after {args.finetune_epochs} epochs "
        "fine-tuning"])


def _cmd_share(args, model, data, cfg, result):
    from sw.models.train import evaluate, finetune
    from sw.prune.export import export_integer, storage_bits
    from sw.prune.pruner import Pruner
    from sw.prune.share import share_weights

    lines = []
    progress = not args.no_progress
    if args.ratio is not None:
        report = Pruner(model).prune(args.ratio)
        result["prune"] = report.to_dict()
        lines.append(report.summary())
        finetune(model, data, cfg, args.finetune_epochs, lr_scale=args.lr_scale, progress=progress)
    pruned = evaluate(model, data.x_test, data.y_test)
    pruned_val = evaluate(model, data.x_val, data.y_val)
    books = share_weights(model, bits=args.bits)
    shared = evaluate(model, data.x_test, data.y_test)
    shared_val = evaluate(model, data.x_val, data.y_val)
    history = finetune(model, data, cfg, args.finetune_epochs, lr_scale=args.lr_scale, progress=progress,
                       desc="centroid fine-tune")
    _plot_recovery(args, pruned_val, shared_val, history, "weight sharing")
    tuned = evaluate(model, data.x_test, data.y_test)
    notes = []
    net = export_integer(model, data.x_train, notes)
    net.save(args.stage / "export.npz")
    integer = net.accuracy(data.x_test, data.y_test)
    storage = storage_bits(net, 1)
    result["accuracy"] = {"before_sharing": pruned, "shared": shared, "centroid_finetuned": tuned,
                          "integer": integer}
    result["clusters_used"] = {k: v.used for k, v in books.items()}
    result["export"] = [{"name": ly.name, "shape": list(ly.shape), "shift": ly.shift, "relu": ly.relu,
                         "codebook": ly.codebook.tolist()} for ly in net.layers]
    result["storage"], result["notes"] = storage, notes
    _save(args, model, result)
    lines += [f"test accuracy: {pruned:.2f}% → {args.bits}-bit sharing {shared:.2f}% → centroid fine-tuning "
              f"{tuned:.2f}%; integer export {integer:.2f}% (float {tuned:.2f}%)",
              f"Deep Compression storage: {storage['dense_bits'] / 8:,.0f} B → "
              f"{storage['compressed_bits'] / 8:,.0f} B "
              f"({storage['ratio']:.1f}×)",
              f"pack it for EIE: sparsehw pack eie --export {args.out / 'export.npz'} --n-pe 4 --out layers/",
              *notes]
    return "\n".join(lines)


def run(args) -> int:
    """Run a parsed ``sparsehw prune …`` command: arguments, ``--load`` and ``--out`` are checked
    first, the model's layers before any training; the outputs are staged and appear in ``--out``
    together when the command succeeds (:class:`CLIError` otherwise, with nothing written)."""
    cmd = args.prune_command
    _check_args(args)
    check_output_files(args.out, _outputs(args), force=args.force)
    if args.load is not None:
        input_file(args.load, "--load")
    with _executor(args) as ex, bad_input():
        model, data, cfg, start = _start(args, baseline=cmd != "slim")
        result = {"command": cmd, "args": {k: str(v) for k, v in vars(args).items() if k != "func"}, **start}
        with new_files(args.out) as stage:
            args.stage, args.executor = stage, ex
            text = globals()[f"_cmd_{cmd}"](args, model, data, cfg, result)
            (stage / f"{cmd}.json").write_text(json.dumps(result, indent=2, default=str))
    print(text)
    return 0
