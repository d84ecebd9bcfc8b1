"""NetAdapt (Yang et al. 2018): greedy channel pruning driven by a measured resource.

Every iteration tries each candidate layer alone: it removes the fewest of that layer's channels
(lowest L1 norm first) that cut the resource — dense MACs by default, or any ``resource(model)``
such as a latency table or a cycle model — by ``step`` of the original (iteration ``i``:
``step × step_decay^(i − 1)``; the paper's schedule is ``step=0.025, step_decay=0.96``), fine-tunes that candidate
for ``short_epochs``, and keeps the one with the best validation accuracy. Iterations repeat
until the resource is at most ``target`` of the original, then the winner is fine-tuned for
``final_epochs``. Channels are physically removed, so every candidate is a smaller dense model;
the model passed in is left untouched.
"""

import copy
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from sw.markdown import table
from sw.models.train import evaluate, finetune
from sw.prune.criteria import L1
from sw.prune.granularity import Channel
from sw.prune.graph import channel_groups
from sw.prune.parallel import sequential
from sw.prune.pruner import Pruner
from sw.prune.report import model_stats


def dense_macs(model) -> int:
    """Dense multiply-accumulates per sample of the physical model (the default resource)."""
    return model_stats(model).macs


def nonzero_macs(model) -> int:
    """Multiply-accumulates per sample with a nonzero weight: what EIE executes on a sparse model."""
    return model_stats(model).nonzero_macs


def params(model) -> int:
    """Parameters of the physical model."""
    return model_stats(model).params


# named functions, not lambdas: a resource travels to the workers that run the candidates
RESOURCES = {"macs": dense_macs, "nonzero-macs": nonzero_macs, "params": params}


def _channels(model, layer: str) -> int:
    module = dict(model.named_modules())[layer]
    return getattr(module, "out_channels", None) or module.out_features


def _units(model, layer: str) -> int:
    """Units of ``layer``'s channel group: its channels, unless coupling ties several together."""
    return channel_groups(model)[layer].units


def _remove(model, layer: str, k: int, criterion):
    """A copy of ``model`` with ``k`` units of ``layer``'s group (lowest ``criterion`` score) removed."""
    m = copy.deepcopy(model)
    if k:
        pruner = Pruner(m, Channel(), criterion, layers=[layer])
        pruner.prune(k / pruner.groups[layer].units)
        pruner.remove()
    return m


def shrink_layer(model, layer: str, budget: float, resource=dense_macs, criterion=None):
    """The fewest channels of ``layer`` whose removal brings ``resource`` to at most ``budget``:
    ``(k, model_copy)``, or ``None`` when even keeping one channel does not reach it."""
    criterion = criterion or L1()
    if resource(model) <= budget:
        return 0, copy.deepcopy(model)
    n = _units(model, layer)
    if n < 2 or resource(_remove(model, layer, n - 1, criterion)) > budget:
        return None
    lo, hi = 0, n - 1          # resource(lo) > budget >= resource(hi); the resource falls with k
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if resource(_remove(model, layer, mid, criterion)) <= budget:
            hi = mid
        else:
            lo = mid
    return hi, _remove(model, layer, hi, criterion)


@dataclass
class NetAdaptResult:
    """The search trace and the outcome; resources are fractions of the original."""

    trace: list = field(default_factory=list)   # per iteration: budget, every candidate, the choice
    resource: float = 1.0
    channels: dict = field(default_factory=dict)
    val_before_final: float = 0.0
    val_acc: float = 0.0
    test_acc: float = 0.0
    stopped: str = ""

    def to_dict(self) -> dict:
        return {"trace": self.trace, "resource": self.resource, "channels": self.channels,
                "val_before_final": self.val_before_final, "val_acc": self.val_acc, "test_acc": self.test_acc,
                "stopped": self.stopped}

    def plot(self, path, base_val: float, xlabel: str, title: str) -> None:
        """The search trace: resource and validation accuracy of each iteration's winner (after its
        short fine-tune) from the unpruned model's, and the result after the final fine-tune."""
        from sw.prune.plots import line_plot

        chosen = [t["candidates"][t["chosen"]] for t in self.trace]
        line_plot(path, {"winner of each iteration": ([1.0] + [c["resource"] for c in chosen],
                                                      [base_val] + [c["val_acc"] for c in chosen]),
                         "after the final fine-tune": ([self.resource], [self.val_acc])},
                  xlabel, "val accuracy (%)", title)

    def table(self) -> str:
        """Markdown: one row per iteration, the chosen layer and every candidate's accuracy."""
        rows = []
        for t in self.trace:
            c = t["candidates"][t["chosen"]]
            others = ", ".join(f"{n}: {x['val_acc']:.2f}" if x else f"{n}: —" for n, x in t["candidates"].items())
            rows.append([t["iteration"], f"{c['resource']:.3f}", t["chosen"], c["removed"], f"{c['val_acc']:.2f}",
                         others])
        return "\n".join(table(["iteration", "resource", "chosen", "channels removed", "val acc",
                                "candidates (layer: val acc)"], rows, "rrlrrl"))


def _candidate(ctx: tuple, layer: str):
    """One candidate of a NetAdapt iteration (a task of :mod:`sw.prune.parallel`): ``layer`` shrunk
    to the budget, fine-tuned ``short_epochs`` (seeded by ``cfg.seed``, so the same wherever and in
    whatever order it runs) and scored; ``(record, model)``, or ``None`` when the layer cannot
    reach the budget alone."""
    model, budget, resource, criterion, data, cfg, short_epochs, lr_scale = ctx
    found = shrink_layer(model, layer, budget, resource, criterion)
    if found is None:
        return None
    k, m = found
    if short_epochs:
        finetune(m, data, cfg, short_epochs, lr_scale=lr_scale, progress=False)
    return {"removed": k, "channels": _channels(m, layer), "resource": resource(m),
            "val_acc": evaluate(m, data.x_val, data.y_val)}, m


def step_cut(step: float, step_decay: float, iteration: int) -> float:
    """The cut of iteration ``iteration`` (from 1), as a fraction of the original resource:
    ``step × step_decay^(iteration − 1)``."""
    return step * step_decay ** (iteration - 1)


def schedule_iterations(target: float, step: float, step_decay: float = 1.0) -> int:
    """Iterations the schedule needs to reach ``target`` when every iteration cuts exactly its step
    (a real one may cut more: channels are removed whole). ``ValueError`` when the cuts never add
    up to ``1 − target``: with ``step_decay < 1`` they sum to less than ``step / (1 − step_decay)``."""
    if step_decay < 1 and step / (1 - step_decay) <= 1 - target + 1e-9:
        raise ValueError(f"step_decay {step_decay!r} with step {step!r}: the cuts sum to less than "
                         f"step / (1 - step_decay) = {step / (1 - step_decay):.4g}, which does not reach "
                         f"1 - target = {1 - target:.4g}; raise step or step_decay")
    done, n = 0.0, 0
    while done < 1 - target - 1e-9:
        n += 1
        done += step_cut(step, step_decay, n)
    return n


def netadapt(model, data, cfg, target: float, step: float, short_epochs: int = 1, final_epochs: int = 12,
             lr_scale: float = 0.1, resource=dense_macs, layers=None, criterion=None, progress: bool = True,
             step_decay: float = 1.0, executor=None):
    """Shrink a copy of ``model`` until ``resource`` is at most ``target`` × the original, iteration
    ``i`` (from 1) cutting :func:`step_cut` ``= step × step_decay^(i − 1)`` × the original from what
    the previous iteration reached (the last cut may be smaller): ``step_decay = 1`` (default) is a
    constant step, NetAdapt's paper uses ``step = 0.025, step_decay = 0.96``. Returns
    ``(model, NetAdaptResult)``. ``layers``: candidate layers (default every layer whose channels
    can be removed). Candidates are compared after their short fine-tune, and their resource is
    measured then too: a resource that depends on the activations (EIE cycles) can move a little
    with training, so the final one is re-measured after the final fine-tune.

    The candidates of an iteration are independent: ``executor`` (:func:`sw.prune.parallel.executor`:
    local processes or Ray; default this process) runs them, each with one torch thread and its
    fine-tune seeded by ``cfg.seed``, so the result is the same in every mode. ``resource`` and
    ``criterion`` then travel to the workers and must pickle (a named function, not a lambda)."""
    if not 0 < target < 1:
        raise ValueError(f"target must be a resource fraction in (0, 1), got {target!r}")
    if not 0 < step <= 1 - target + 1e-9:      # 1 - 0.8 is 0.19999999999999996
        raise ValueError(f"step must be in (0, 1 - target] = (0, {1 - target:g}], got {step!r}")
    if not 0 < step_decay <= 1:
        raise ValueError(f"step_decay must be in (0, 1], got {step_decay!r}")
    iterations = schedule_iterations(target, step, step_decay)
    if short_epochs < 0 or final_epochs < 0:
        raise ValueError(f"epoch counts must be >= 0, got short {short_epochs}, final {final_epochs}")
    criterion = criterion or L1()
    ex = executor or sequential()
    model = copy.deepcopy(model)
    candidates = list(Pruner(model, Channel(), criterion, layers).layers)
    r0 = resource(model)
    if not r0 > 0:
        raise ValueError(f"the resource of the unpruned model must be positive, got {r0!r}")
    result = NetAdaptResult()
    current = r0
    bar = tqdm(total=iterations, desc="NetAdapt", disable=not progress, leave=False)
    while current > target * r0 * (1 + 1e-12):
        budget = max(current - step_cut(step, step_decay, len(result.trace) + 1) * r0, target * r0)
        tried, models, costs = {}, {}, {}
        ctx = (model, budget, resource, criterion, data, cfg, short_epochs, lr_scale)
        for layer, found in zip(candidates, ex.map(_candidate, candidates, shared=ctx), strict=True):
            if found is None:
                tried[layer] = None
                continue
            record, models[layer] = found
            costs[layer] = record["resource"]
            tried[layer] = {**record, "resource": record["resource"] / r0}
        if not models:
            result.stopped = (f"no single layer can bring the resource from {current / r0:.3f} to "
                              f"{budget / r0:.3f}; stopped")
            break
        chosen = max(models, key=lambda n: tried[n]["val_acc"])    # first of equals, in layer order
        model, current = models[chosen], costs[chosen]
        result.trace.append({"iteration": len(result.trace) + 1, "budget": budget / r0, "chosen": chosen,
                             "candidates": tried})
        bar.update()
        bar.set_postfix(resource=f"{current / r0:.3f}", layer=chosen, val=f"{tried[chosen]['val_acc']:.2f}")
    bar.close()
    result.val_before_final = evaluate(model, data.x_val, data.y_val)
    if final_epochs:
        finetune(model, data, cfg, final_epochs, lr_scale=lr_scale, progress=progress, desc="NetAdapt final")
    result.resource = resource(model) / r0      # a data-dependent resource (EIE cycles) moves with training
    result.channels = {n: _channels(model, n) for n in candidates}
    result.val_acc = evaluate(model, data.x_val, data.y_val)
    result.test_acc = evaluate(model, data.x_test, data.y_test)
    return model, result
