"""Recovery: fine-tuning after pruning, iterative prune → fine-tune schedules, and one-shot.

Fine-tuning runs at ``lr_scale`` (1/10 or 1/100) of the training learning rate
(:func:`sw.models.train.finetune`). An iterative schedule reaches the final ratio in ``steps``
prune → fine-tune rounds; one-shot prunes to the final ratio at once. :func:`compare_schedules`
runs two one-shot controls: the same fine-tuning after its one prune as iterative gives each
round (the lecture's and Han et al.'s protocol), and the same total number of epochs (equal cost).
"""

import copy
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from sw.markdown import table
from sw.models.train import evaluate, finetune
from sw.prune.pruner import Pruner, check_ratio

SCHEDULES = ("geometric", "linear")


def schedule_ratios(final, steps: int, schedule: str = "geometric") -> list:
    """The ratio of each of ``steps`` rounds ending at ``final`` (a float or ``{layer: ratio}``).

    ``geometric``: every round prunes the same fraction of the weights still alive
    (``1 - (1 - final) ** (k / steps)``); ``linear``: ``final * k / steps``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")

    def at(r, k):
        r = check_ratio(r)
        return 1 - (1 - r) ** (k / steps) if schedule == "geometric" else r * k / steps

    if isinstance(final, dict):
        return [{n: at(r, k) for n, r in final.items()} for k in range(1, steps + 1)]
    return [at(final, k) for k in range(1, steps + 1)]


@dataclass
class ScheduleResult:
    """Per-round rows: ``step``, ``sparsity`` (masked), accuracy right after pruning and after
    fine-tuning (validation), and the final test accuracy."""

    name: str
    rows: list = field(default_factory=list)
    test_acc: float = 0.0
    sparsity: float = 0.0
    epochs: int = 0

    def to_dict(self) -> dict:
        return {"name": self.name, "rows": self.rows, "test_acc": self.test_acc, "sparsity": self.sparsity,
                "epochs": self.epochs}


def prune_and_finetune(model, data, train_cfg, final, steps: int, epochs_per_step: int, lr_scale: float = 0.1,
                       granularity=None, criterion=None, layers=None, scope: str = "layer",
                       schedule: str = "geometric", name=None, progress: bool = True) -> ScheduleResult:
    """Prune ``model`` in place to ``final`` over ``steps`` rounds, fine-tuning ``epochs_per_step``
    epochs after each (``steps=1``: one-shot)."""
    pruner = Pruner(model, granularity, criterion, layers)
    result = ScheduleResult(name or ("one-shot" if steps == 1 else f"iterative x{steps}"))
    for k, r in enumerate(tqdm(schedule_ratios(final, steps, schedule), desc=result.name,
                               disable=not progress,
                               leave=False), start=1):
        report = pruner.prune(r, scope=scope)
        pruned = evaluate(model, data.x_val, data.y_val)
        finetune(model, data, train_cfg, epochs_per_step, lr_scale=lr_scale, progress=progress,
                 desc=f"{result.name} fine-tune {k}/{steps}")
        result.rows.append({"step": k, "sparsity": report.after.masked_sparsity, "val_after_prune": pruned,
                            "val_after_finetune": evaluate(model, data.x_val, data.y_val)})
    result.test_acc = evaluate(model, data.x_test, data.y_test)
    result.sparsity = result.rows[-1]["sparsity"]
    result.epochs = steps * epochs_per_step
    return result


@dataclass
class ScheduleComparison:
    """Iterative versus the two one-shot controls, each with the model it produced."""

    iterative: ScheduleResult
    one_shot: ScheduleResult         # one prune, ``epochs_per_step`` epochs (what one round gets)
    equal_epochs: ScheduleResult     # one prune, ``steps × epochs_per_step`` epochs (iterative's total)
    models: dict = field(default_factory=dict, repr=False)   # field name -> the model it produced

    @property
    def results(self) -> list:
        return [self.iterative, self.one_shot, self.equal_epochs]


def compare_schedules(model, data, train_cfg, final, steps: int, epochs_per_step: int, lr_scale: float = 0.1,
                      granularity=None, criterion=None, layers=None, scope: str = "layer",
                      schedule: str = "geometric", progress: bool = True) -> ScheduleComparison:
    """Iterative (``steps`` rounds of ``epochs_per_step`` epochs) versus one-shot with
    ``epochs_per_step`` epochs and one-shot with ``steps × epochs_per_step`` epochs, each from a
    copy of ``model`` (left untouched). ``steps`` must be at least 2."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"an iterative schedule needs steps >= 2, got {steps!r}")
    common = {"granularity": granularity, "criterion": criterion, "layers": layers, "scope": scope,
              "lr_scale": lr_scale, "progress": progress}
    runs, models = {}, {}
    for key, name, n, eps in (("iterative", f"iterative {steps}x{epochs_per_step} ep", steps,
                               epochs_per_step),
                              ("one_shot", f"one-shot {epochs_per_step} ep", 1, epochs_per_step),
                              ("equal_epochs", f"one-shot {steps * epochs_per_step} ep", 1,
                               steps * epochs_per_step)):
        m = copy.deepcopy(model)
        runs[key] = prune_and_finetune(m, data, train_cfg, final, n, eps, schedule=schedule, name=name, **common)
        models[key] = m
    return ScheduleComparison(**runs, models=models)


def schedule_table(base_test: float, results) -> str:
    """Markdown table comparing schedules: sparsity, epochs, test accuracy and drop."""
    rows = [[r.name, f"{r.sparsity:.2%}", r.epochs, f"{r.test_acc:.2f}", f"{base_test - r.test_acc:+.2f}"]
            for r in results]
    return "\n".join(table(["schedule", "sparsity", "fine-tune epochs", "test acc (%)", "drop (points)"], rows,
                           "lrrrr"))
