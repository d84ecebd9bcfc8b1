"""AMC (He et al. 2018): a reinforcement-learning agent picks each layer's channel-pruning ratio.

The agent walks the removable layers in order. Its state embeds the layer (index, output and
input channels, kernel size, stride, output size, MACs) and the search so far (MACs already cut,
MACs of the layers still to come, the previous action); its action is the fraction of the layer's
channels to remove, in ``[0, max_ratio]``. The resource constraint is enforced as in AMC: each
action is raised to the least ratio that still lets the target be met if every later layer is
pruned by ``max_ratio``, so every episode's model satisfies it. At the end of an episode the
channels with the lowest L1 norm are removed and the reward is ``-error`` on the validation split,
without fine-tuning. The agent is DDPG's deterministic actor-critic (replay buffer, Gaussian
exploration clipped to the action range and decaying after a random warm-up, a moving-average
reward baseline); since every step of an episode shares the episode's reward, the critic regresses
that reward directly, so DDPG's bootstrapped targets and target networks are not needed. The best
episode's ratios are applied, the channels removed, and the model fine-tuned.
"""

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sw.models.train import evaluate, finetune
from sw.prune.criteria import L1
from sw.prune.granularity import Channel
from sw.prune.pruner import Pruner
from sw.prune.report import model_stats


class _Layers:
    """The removable layers in order, with what the MAC count of a choice of ratios needs."""

    def __init__(self, model):
        pruner = Pruner(model, Channel(), L1())
        self.names = list(pruner.layers)
        stats = model_stats(model)
        self.base_macs = stats.macs
        self.macs = {s.name: s.macs for s in stats.layers}          # every Linear/Conv2d, original
        self.units = {n: pruner.groups[n].units for n in self.names}
        # per layer: [(group name, fraction of its output rows / input columns in that group)]
        self.out_parts, self.in_parts = {}, {}
        for name in self.names:
            group = pruner.groups[name]
            for parts, members in ((self.out_parts, group.producers + group.followers),
                                   (self.in_parts, group.consumers)):
                for m in members:
                    if not isinstance(m.module, nn.Conv2d | nn.Linear):
                        continue
                    parts.setdefault(m.name, []).append((name, float((m.index >= 0).float().mean())))
        modules = dict(model.named_modules())
        rows = []
        for t, name in enumerate(self.names):
            m = modules[name]
            conv = isinstance(m, nn.Conv2d)
            out_size = self.macs[name] / max(1, m.weight[0].numel() * m.weight.shape[0])
            rows.append([t, m.weight.shape[0], m.weight.shape[1], m.kernel_size[0] if conv else 1,
                         m.stride[0] if conv else 1, out_size, self.macs[name]])
        self.static = np.asarray(rows, dtype=np.float64)

    @staticmethod
    def _kept(parts, keep):
        return 1.0 - sum(f for _, f in parts) + sum(f * keep.get(g, 1.0) for g, f in parts)

    def total(self, keep: dict) -> float:
        """MACs with ``keep[group]`` of each removable group's units kept (1 where absent): a layer's
        MACs scale with the kept share of its output channels and of its input channels."""
        return sum(m * self._kept(self.out_parts.get(n, ()), keep) * self._kept(self.in_parts.get(n, ()), keep)
                   for n, m in self.macs.items())

    def least_ratio(self, t: int, keep: dict, budget: float, max_ratio: float) -> float:
        """The least ratio for layer ``t`` that still meets ``budget`` with every later layer at
        ``max_ratio`` (``keep``: the earlier layers' choices)."""
        trial = dict(keep)
        for n in self.names[t + 1:]:
            trial[n] = 1 - max_ratio

        def macs(a):
            trial[self.names[t]] = 1 - a
            return self.total(trial)

        if macs(0.0) <= budget:
            return 0.0
        lo, hi = 0.0, max_ratio
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if macs(mid) <= budget else (mid, hi)
        return hi


def _mlp(n_in, hidden, out_act=None):
    layers = [nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)]
    return nn.Sequential(*layers, *([out_act] if out_act else []))


@dataclass
class AMCResult:
    """Every episode (ratios, MAC fraction, validation accuracy, reward) and the final model's figures."""

    episodes: list = field(default_factory=list)
    best: dict = field(default_factory=dict)
    macs: float = 1.0
    channels: dict = field(default_factory=dict)
    val_before_finetune: float = 0.0
    val_acc: float = 0.0
    test_acc: float = 0.0

    def to_dict(self) -> dict:
        return {"episodes": self.episodes, "best": self.best, "macs": self.macs, "channels": self.channels,
                "val_before_finetune": self.val_before_finetune, "val_acc": self.val_acc,
                "test_acc": self.test_acc}

    def plot(self, path, warmup: int) -> None:
        """Validation accuracy of every episode and the best so far."""
        from sw.prune.plots import line_plot

        acc = [e["val_acc"] for e in self.episodes]
        best = np.maximum.accumulate(acc).tolist()
        xs = list(range(1, len(acc) + 1))
        line_plot(path, {"episode (no fine-tuning)": (xs, acc), "best so far": (xs, best),
                         "end of random warm-up": ([warmup, warmup], [min(acc), max(acc)])},
                  "episode", "val accuracy after pruning (%)", "AMC search")


def apply_ratios(model, ratios: dict, criterion=None):
    """A copy of ``model`` with ``ratios[layer]`` of each layer's channel-group units (lowest score)
    removed; the kept count is ``floor((1 - ratio) × n)``, at least 1."""
    m = copy.deepcopy(model)
    fractions = {}
    pruner = Pruner(m, Channel(), criterion or L1(), layers=list(ratios)) if ratios else None
    for n, r in ratios.items():
        c = pruner.groups[n].units
        removed = c - max(1, int(np.floor((1 - r) * c + 1e-9)))
        if removed:
            fractions[n] = removed / c
    if fractions:
        pruner = Pruner(m, Channel(), criterion or L1(), layers=list(fractions))
        pruner.prune(fractions)
        pruner.remove()
    return m


def amc(model, data, cfg, target: float, episodes: int = 300, warmup: int = 100, max_ratio: float = 0.8,
        final_epochs: int = 12, lr_scale: float = 0.1, seed: int = 0, hidden: int = 64, batch: int = 64,
        progress: bool = True):
    """Search per-layer channel ratios of ``model`` whose dense MACs are at most ``target`` × the
    original's; return ``(pruned_and_finetuned_model, AMCResult)``. The input model is untouched."""
    if not 0 < target < 1:
        raise ValueError(f"target must be a MAC fraction in (0, 1), got {target!r}")
    if not 0 < max_ratio < 1:
        raise ValueError(f"max_ratio must be in (0, 1), got {max_ratio!r}")
    if not 0 <= warmup < episodes:
        raise ValueError(f"need 0 <= warmup < episodes, got warmup {warmup}, episodes {episodes}")
    layers = _Layers(model)
    base = layers.base_macs
    if layers.total({n: 1 - max_ratio for n in layers.names}) > target * base * (1 + 1e-9):
        raise ValueError(f"target {target} is out of reach: removing {max_ratio:.0%} of every removable layer's "
                         f"channels leaves {layers.total({n: 1 - max_ratio for n in layers.names}) / base:.3f} "
                         "of the MACs")
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n_state = layers.static.shape[1] + 3
    actor, critic = _mlp(n_state, hidden, nn.Sigmoid()), _mlp(n_state + 1, hidden)
    opt_a = torch.optim.Adam(actor.parameters(), lr=1e-3)
    opt_c = torch.optim.Adam(critic.parameters(), lr=2e-3)
    scale = np.maximum(layers.static.max(axis=0), 1e-12)
    buffer, baseline, sigma = [], None, 0.5
    result = AMCResult()
    bar = tqdm(range(episodes), desc="AMC", disable=not progress, leave=False)
    for ep in bar:
        keep, prev, states, actions = {}, 0.0, [], []
        for t, name in enumerate(layers.names):
            done = base - layers.total(keep)
            rest = sum(layers.macs[n] for n in layers.names[t + 1:])
            s = np.concatenate([layers.static[t] / scale, [done / base, rest / base, prev]]).astype(np.float32)
            if ep < warmup:
                a = float(rng.uniform(0, max_ratio))
            else:
                with torch.no_grad():
                    mu = float(actor(torch.as_tensor(s)[None])[0, 0]) * max_ratio
                a = float(np.clip(mu + rng.normal(0, sigma * max_ratio), 0, max_ratio))
            a = max(a, layers.least_ratio(t, keep, target * base, max_ratio))
            keep[name] = 1 - a
            states.append(s)
            actions.append(a / max_ratio)
            prev = a
        ratios = {n: 1 - k for n, k in keep.items()}
        m = apply_ratios(model, ratios)
        macs = model_stats(m).macs / base
        acc = evaluate(m, data.x_val, data.y_val)
        reward = acc / 100 - 1
        baseline = reward if baseline is None else 0.95 * baseline + 0.05 * reward
        result.episodes.append({"episode": ep + 1, "ratios": ratios, "macs": macs, "val_acc": acc,
                                "reward": reward})
        if not result.best or acc > result.best["val_acc"]:
            result.best = result.episodes[-1]
        buffer += [(s, a, reward - baseline) for s, a in zip(states, actions, strict=True)]
        if ep >= warmup:
            sigma *= 0.97
            for _ in range(len(layers.names)):
                idx = torch.randint(len(buffer), (min(batch, len(buffer)),), generator=gen)
                s_b = torch.as_tensor(np.stack([buffer[i][0] for i in idx]))
                a_b = torch.tensor([[buffer[i][1]] for i in idx], dtype=torch.float32)
                r_b = torch.tensor([[buffer[i][2]] for i in idx], dtype=torch.float32)
                loss_c = nn.functional.mse_loss(critic(torch.cat([s_b, a_b], 1)), r_b)
                opt_c.zero_grad()
                loss_c.backward()
                opt_c.step()
                loss_a = -critic(torch.cat([s_b, actor(s_b)], 1)).mean()
                opt_a.zero_grad()
                loss_a.backward()
                opt_a.step()
        bar.set_postfix(best=f"{result.best['val_acc']:.2f}", acc=f"{acc:.2f}", macs=f"{macs:.3f}")
    bar.close()
    m = apply_ratios(model, result.best["ratios"])
    result.val_before_finetune = evaluate(m, data.x_val, data.y_val)
    if final_epochs:
        finetune(m, data, cfg, final_epochs, lr_scale=lr_scale, progress=progress, desc="AMC fine-tune")
    result.macs = model_stats(m).macs / base
    modules = dict(m.named_modules())
    result.channels = {n: modules[n].weight.shape[0] for n in layers.names}
    result.val_acc = evaluate(m, data.x_val, data.y_val)
    result.test_acc = evaluate(m, data.x_test, data.y_test)
    return m, result
