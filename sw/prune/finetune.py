"""Recovery: fine-tuning after pruning, iterative prune → fine-tune schedules, and one-shot.

Fine-tuning runs at ``lr_scale`` (1/10 or 1/100) of the training learning rate
(:func:`sw.models.train.finetune`). An iterative schedule reaches the final ratio in ``steps``
prune → fine-tune rounds; one-shot prunes to the final ratio at once and fine-tunes with the
same total number of epochs, so the two compare at equal cost.
"""

import copy
from dataclasses import dataclass, field

from tqdm.auto import tqdm

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


def compare_schedules(model, data, train_cfg, final, steps: int, epochs_per_step: int, lr_scale: float = 0.1,
                      granularity=None, criterion=None, layers=None, scope: str = "layer",
                      schedule: str = "geometric", progress: bool = True):
    """Iterative (``steps`` rounds) versus one-shot (one round, the same total epochs) from copies of
    ``model``. Returns ``(iterative_model, iterative, one_shot_model, one_shot)``."""
    common = {"granularity": granularity, "criterion": criterion, "layers": layers, "scope": scope,
              "lr_scale": lr_scale, "progress": progress}
    it_model, os_model = copy.deepcopy(model), copy.deepcopy(model)
    it = prune_and_finetune(it_model, data, train_cfg, final, steps, epochs_per_step, schedule=schedule,
                            name=f"iterative x{steps}", **common)
    one = prune_and_finetune(os_model, data, train_cfg, final, 1, steps * epochs_per_step, name="one-shot",
                             **common)
    return it_model, it, os_model, one


def schedule_table(base_test: float, results) -> str:
    """Markdown table comparing schedules: sparsity, epochs, test accuracy and drop."""
    lines = ["| schedule | sparsity | fine-tune epochs | test acc (%) | drop (points) |",
             "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.sparsity:.2%} | {r.epochs} | {r.test_acc:.2f} | "
                     f"{base_test - r.test_acc:+.2f} |")
    return "\n".join(lines)
