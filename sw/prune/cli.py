"""``sparsehw prune …``: the pruning toolkit on the command line.

Every subcommand starts from a trained model (the cached baseline of ``--model`` on ``--data``,
trained on first use, or ``--load PATH``), writes ``<command>.json`` (and PNG plots) into the
directory ``--out`` names and, when it produces a model, ``model.safetensors`` there. Existing
outputs are never overwritten without ``--force``. Each subcommand is a thin layer over library
functions (``sw.prune.*``) a user can import.

``sw.cli`` registers this with :func:`add_parser` and dispatches to :func:`run`.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

COMMANDS = ("sensitivity", "magnitude", "channel", "nm", "slim", "iterative", "netadapt", "amc", "share")
MODEL_FILE = "model.safetensors"


def _common(p, default_model="lenet300"):
    p.add_argument("--out", required=True, type=Path, help="output directory (JSON, PNG, saved model)")
    p.add_argument("--model", default=default_model, choices=("lenet300", "cnn"),
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
                   help="resource cut per iteration, as a fraction of the original's (default 0.1)")
    p.add_argument("--resource", default="macs", choices=("macs", "nonzero-macs", "params", "eie-cycles"),
                   help="dense MACs per sample, MACs with a nonzero weight (sparse models), parameter count, or "
                        "EIE array cycles from the exact cycle model (Linear/ReLU chains) (default macs)")
    p.add_argument("--n-pe", type=int, default=64, help="PEs of the EIE array for --resource eie-cycles")
    p.add_argument("--samples", type=int, default=16,
                   help="validation digits averaged by --resource eie-cycles (default 16)")
    p.add_argument("--layers", help="comma-separated candidate layers (default: every removable layer)")
    p.add_argument("--short-epochs", type=int, default=1,
                   help="fine-tuning epochs of each candidate before comparing them (default 1)")
    _finetune_opts(p)

    p = sub.add_parser("amc", help="AMC: a DDPG agent picks each layer's channel ratio under a MAC budget")
    _common(p, "cnn")
    p.add_argument("--target", type=float, required=True, help="MACs to reach, as a fraction of the original's")
    p.add_argument("--episodes", type=int, default=300, help="search episodes (default 300)")
    p.add_argument("--warmup", type=int, default=100, help="episodes of random actions first (default 100)")
    p.add_argument("--max-ratio", type=float, default=0.8, help="largest ratio per layer (default 0.8)")
    _finetune_opts(p)

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
    return [args.out / f for f in files]


def _layers(s):
    return None if s is None else [x.strip() for x in s.split(",") if x.strip()]


def _ratios(args):
    if getattr(args, "ratio", None) is not None:
        return args.ratio
    out = {}
    for item in args.ratios.split(","):
        name, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--ratios wants layer=ratio pairs such as fc1=0.9,fc2=0.8; got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--ratios: {value!r} for layer {name.strip()!r} is not a number") from None
    return out


def _start(args, baseline: bool = True):
    """``(model, data, train_cfg, info)`` the command starts from (``model`` is None when no
    ``--load`` is given and ``baseline`` is False: the command trains its own)."""
    from sw.models import data as datasets
    from sw.models.io import load_model
    from sw.models.train import BASELINES, TrainConfig, pretrained

    data = datasets.load(args.data)
    cfg = BASELINES.get(args.model, TrainConfig())
    if args.train_epochs is not None:
        cfg = replace(cfg, epochs=args.train_epochs)
    cfg = replace(cfg, seed=args.seed)
    if args.load is not None:
        model, meta = load_model(args.load)
        if tuple(model.input_shape) != data.input_shape:
            raise ValueError(f"{args.load} expects inputs {tuple(model.input_shape)}, but {args.data} has "
                             f"{data.input_shape}")
        return model, data, cfg, {"loaded": str(args.load)}
    if not baseline:
        return None, data, cfg, {}
    model, info = pretrained(args.model, args.data, cfg, progress=not args.no_progress)
    return model, data, cfg, {"baseline": {k: v for k, v in info.items() if k != "history"}}


def _acc(model, data):
    from sw.models.train import evaluate

    return {"val_acc": evaluate(model, data.x_val, data.y_val),
            "test_acc": evaluate(model, data.x_test, data.y_test)}


def _save(args, model, result):
    from sw.models.io import save_model

    info = {"command": args.prune_command, **result.get("accuracy", {})}
    save_model(model, args.out / MODEL_FILE, info=info,
               force=args.force)


def _cmd_sensitivity(args, model, data, cfg, result):
    from sw.prune.criteria import criterion
    from sw.prune.granularity import granularity
    from sw.prune.sensitivity import sensitivity_scan

    try:
        ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
    except ValueError:
        raise ValueError(f"--ratios must be comma-separated numbers, got {args.ratios!r}") from None
    scan = sensitivity_scan(model, data, _layers(args.layers), ratios, granularity(args.granularity),
                            criterion(args.criterion), progress=not args.no_progress)
    scan.plot(args.out / "sensitivity.png")
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
    line_plot(args.out / f"{args.prune_command}.png",
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
    return _prune_finetune(args, model, data, cfg, result, pruner, _ratios(args), args.scope)


def _cmd_channel(args, model, data, cfg, result):
    from sw.prune.criteria import criterion
    from sw.prune.granularity import Channel
    from sw.prune.pruner import Pruner

    pruner = Pruner(model, Channel(), criterion(args.criterion), _layers(args.layers))
    return _prune_finetune(args, model, data, cfg, result, pruner, _ratios(args), args.scope, remove=True)


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
    cmp = compare_schedules(model, data, cfg, _ratios(args), args.steps, args.epochs_per_step,
                            lr_scale=args.lr_scale, scope=args.scope, schedule=args.schedule,
                            progress=not args.no_progress)
    result["baseline_test_acc"] = base
    result["iterative"], result["one_shot"] = cmp.iterative.to_dict(), cmp.one_shot.to_dict()
    result["one_shot_equal_epochs"] = cmp.equal_epochs.to_dict()
    result["accuracy"] = {"iterative_test_acc": cmp.iterative.test_acc, "one_shot_test_acc": cmp.one_shot.test_acc,
                          "one_shot_equal_epochs_test_acc": cmp.equal_epochs.test_acc}
    line_plot(args.out / "iterative.png",
              {r.name: ([100 * row["sparsity"] for row in r.rows], [row["val_after_finetune"] for row in r.rows])
               for r in cmp.results},
              "weights pruned (%)", "val accuracy after fine-tuning (%)", "Iterative vs one-shot pruning")
    _save(args, cmp.models["iterative"], result)
    return f"baseline test accuracy {base:.2f}%\n" + schedule_table(base, cmp.results)


def _cmd_netadapt(args, model, data, cfg, result):
    from sw.prune.netadapt import RESOURCES, netadapt

    if args.resource == "eie-cycles":
        from sw.prune.latency import EIECycles

        if not 1 <= args.samples <= len(data.x_val):
            raise ValueError(f"--samples must be 1..{len(data.x_val)}, got {args.samples}")
        resource = EIECycles(data.x_val[:args.samples], n_pe=args.n_pe)
    else:
        resource = RESOURCES[args.resource]
    before = _acc(model, data)
    small, res = netadapt(model, data, cfg, args.target, args.step, short_epochs=args.short_epochs,
                          final_epochs=args.finetune_epochs, lr_scale=args.lr_scale, resource=resource,
                          layers=_layers(args.layers), progress=not args.no_progress)
    r0, r1 = resource(model), resource(small)
    result["netadapt"] = res.to_dict()
    result["resource"] = {"kind": args.resource, "before": r0, "after": r1}
    result["accuracy"] = {"before": before, "after_finetune": _acc(small, data)}
    res.plot(args.out / "netadapt.png", before["val_acc"], f"{args.resource} (fraction of the original's)",
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
    from sw.prune.amc import amc

    before = _acc(model, data)
    small, res = amc(model, data, cfg, args.target, episodes=args.episodes, warmup=args.warmup,
                     max_ratio=args.max_ratio, final_epochs=args.finetune_epochs, lr_scale=args.lr_scale,
                     seed=args.seed, progress=not args.no_progress)
    result["amc"] = res.to_dict()
    result["accuracy"] = {"before": before, "after_finetune": _acc(small, data)}
    res.plot(args.out / "amc.png", args.warmup)
    _save(args, small, result)
    best = res.best
    return "\n".join([
        f"best of {len(res.episodes)} episodes (episode {best['episode']}): ratios "
        + ", ".join(f"{n}={r:.3f}" for n, r in best["ratios"].items())
        + f"; val {best['val_acc']:.2f}% before fine-tuning",
        f"MACs {res.macs:.1%} of the original; channels " + ", ".join(f"{n}={c}" for n, c in res.channels.items()),
        f"test accuracy {before['test_acc']:.2f}% → {res.test_acc:.2f}% after {args.finetune_epochs} epochs "
        "fine-tuning"])


def _cmd_share(args, model, data, cfg, result):
    from sw.formats import INDEX_WIDTH
    from sw.models.train import evaluate, finetune
    from sw.prune.export import export_integer, linear_chain, storage_bits
    from sw.prune.pruner import Pruner
    from sw.prune.share import share_weights

    if not 1 <= args.bits <= INDEX_WIDTH:
        raise ValueError(f"--bits must be 1..{INDEX_WIDTH}: the EIE weight index is {INDEX_WIDTH} bits")
    linear_chain(model)     # refuse models EIE cannot run before spending time on them
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
    net.save(args.out / "export.npz", force=args.force)
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
              f"({storage['ratio']:.1f}×); export for pack_eie: {args.out / 'export.npz'}", *notes]
    return "\n".join(lines)


def run(args) -> int:
    """Run a parsed ``sparsehw prune …`` command. Returns the exit status (2 on bad input)."""
    cmd = args.prune_command
    try:
        outputs = _outputs(args)
        existing = [str(p) for p in outputs if p.exists()]
        if existing and not args.force:
            raise FileExistsError(f"refusing to overwrite {', '.join(existing)}; use --force")
        args.out.mkdir(parents=True, exist_ok=True)
        model, data, cfg, start = _start(args, baseline=cmd != "slim")
        result = {"command": cmd, "args": {k: str(v) for k, v in vars(args).items() if k != "func"}, **start}
        text = globals()[f"_cmd_{cmd}"](args, model, data, cfg, result)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"sparsehw prune {cmd}: error: {e}", file=sys.stderr)
        return 2
    (args.out / f"{cmd}.json").write_text(json.dumps(result, indent=2, default=str))
    print(text)
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (``python -m sw.prune.cli prune …``), as ``sparsehw`` will call it."""
    parser = argparse.ArgumentParser(prog="sparsehw")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
