"""AMC (He et al. 2018): a DDPG agent picks each layer's channel-pruning ratio under a resource budget.

Environment (:class:`_Env`): the agent walks the removable layers (channel groups) in order. The
state is the layer's embedding (index, conv or linear, output and input channels, kernel, stride,
output size, cost; min-max normalised over the layers) and the search so far (the resource already
cut and the resource of the later layers, as fractions of the unpruned total, and the previous
layer's ratio over ``max_ratio``). An action ``a`` in [0, 1] removes ``a × max_ratio`` of the
layer's channels. The resource is the sum over every Conv2d/Linear layer of
``layer_cost(name, out_kept, in_kept)`` (default: its MACs × the kept shares of its outputs and
inputs); the budget is ``target`` × the unpruned total. As in AMC each action is raised to the
least ratio that still meets the budget with every later layer at ``max_ratio``, so every episode
meets it. At the end of an episode the lowest-L1 channels are removed and the reward is ``-error``
on (a fixed subset of) the validation split, without fine-tuning (optionally after re-estimating
the BatchNorm statistics on training samples, :func:`recalibrate_bn`).

Agent (:class:`DDPG`), as in the paper's code (mit-han-lab/amc): actor and critic MLPs (300, 300),
target copies that follow them by soft updates (τ = 0.01), a replay memory of recent transitions.
Every step of an episode is stored with the episode's final reward and a terminal flag on the last
step; the critic regresses ``r − b + γ(1 − done)·Q'(s', μ'(s'))`` (γ = 1, ``b`` a moving average
of minibatch rewards) and the actor ascends ``Q(s, μ(s))``. The first ``warmup`` episodes act at
random, later ones take ``μ(s)`` plus truncated-normal noise inside [0, 1] with σ = 0.5 ·
0.95^(episode − warmup); after each of them the agent makes one update per layer step. The best
episode's ratios are applied, the channels removed, and the model fine-tuned.

:func:`random_search` is the baseline: the same environment, constraint and evaluation with
uniformly random actions in every episode (with the same seed, AMC's warm-up episodes are its
first ones).
"""

import copy
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sw.models.train import bn_subset, evaluate, finetune, recalibrate_bn
from sw.prune.criteria import L1
from sw.prune.granularity import Channel
from sw.prune.parallel import sequential, single_thread
from sw.prune.pruner import Pruner
from sw.prune.report import model_stats


class _Layers:
    """The removable layers in order, with what the resource of a choice of ratios needs.

    ``layer_cost(name, out_kept, in_kept) -> float``: the resource of the Conv2d/Linear layer
    ``name`` with those fractions of its output and input channels kept; default its MACs × both
    fractions. The search assumes it does not grow when fewer channels are kept."""

    def __init__(self, model, layer_cost=None):
        pruner = Pruner(model, Channel(), L1())
        self.names = list(pruner.layers)
        stats = model_stats(model)
        self.base_macs = stats.macs
        self.macs = {s.name: s.macs for s in stats.layers}          # every Linear/Conv2d, original
        self.cost = layer_cost or (lambda name, out_kept, in_kept: self.macs[name] * out_kept * in_kept)
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
        self.base = self.total({})
        if not self.base > 0:
            raise ValueError(f"the unpruned model's total cost must be positive, got {self.base!r}")
        modules = dict(model.named_modules())
        rows = []
        for t, name in enumerate(self.names):
            m = modules[name]
            conv = isinstance(m, nn.Conv2d)
            out_size = self.macs[name] / max(1, m.weight[0].numel() * m.weight.shape[0])
            rows.append([t, float(conv), m.weight.shape[0], m.weight.shape[1], m.kernel_size[0] if conv else 1,
                         m.stride[0] if conv else 1, out_size, float(self.cost(name, 1.0, 1.0))])
        self.static = np.asarray(rows, dtype=np.float64)

    @staticmethod
    def _kept(parts, keep):
        return 1.0 - sum(f for _, f in parts) + sum(f * keep.get(g, 1.0) for g, f in parts)

    def total(self, keep: dict) -> float:
        """The resource with ``keep[group]`` of each removable group's units kept (1 where absent):
        ``layer_cost`` of every layer at the kept share of its output and of its input channels."""
        return float(sum(self.cost(n, self._kept(self.out_parts.get(n, ()), keep),
                                   self._kept(self.in_parts.get(n, ()), keep)) for n in self.macs))

    def least_ratio(self, t: int, keep: dict, budget: float, max_ratio: float) -> float:
        """The least ratio for layer ``t`` that still meets ``budget`` with every later layer at
        ``max_ratio`` (``keep``: the earlier layers' choices)."""
        trial = dict(keep)
        for n in self.names[t + 1:]:
            trial[n] = 1 - max_ratio

        def cost(a):
            trial[self.names[t]] = 1 - a
            return self.total(trial)

        if cost(0.0) <= budget:
            return 0.0
        lo, hi = 0.0, max_ratio
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if cost(mid) <= budget else (mid, hi)
        return hi


def truncated_normal(mu: float, sigma: float, rng: np.random.Generator, lower: float = 0.0,
                     upper: float = 1.0) -> float:
    """One draw of N(mu, sigma²) conditioned on [lower, upper] (``mu`` itself, clipped, when sigma is 0)."""
    if sigma <= 0:
        return float(np.clip(mu, lower, upper))
    from scipy.stats import truncnorm

    x = truncnorm.rvs((lower - mu) / sigma, (upper - mu) / sigma, loc=mu, scale=sigma, random_state=rng)
    return float(np.clip(x, lower, upper))


class _Actor(nn.Module):
    def __init__(self, n_state, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_state, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]),
                                 nn.ReLU(), nn.Linear(hidden[1], 1), nn.Sigmoid())

    def forward(self, s):
        return self.net(s)


class _Critic(nn.Module):
    """Q(s, a): the state and the action enter the first hidden layer through their own weights."""

    def __init__(self, n_state, hidden):
        super().__init__()
        self.fc_s, self.fc_a = nn.Linear(n_state, hidden[0]), nn.Linear(1, hidden[0])
        self.rest = nn.Sequential(nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Linear(hidden[1], 1))

    def forward(self, s, a):
        return self.rest(self.fc_s(s) + self.fc_a(a))


class DDPG:
    """The AMC agent: a deterministic actor μ(s) in [0, 1] and a critic Q(s, a), each with a target
    copy that follows it by soft updates, and a replay memory of the last ``memory`` transitions.

    ``act(state, sigma)``: μ(s) plus truncated-normal noise inside [0, 1]; ``random_action()``:
    uniform in [0, 1]; ``observe(...)`` stores a transition; ``update()`` makes one minibatch step
    of the critic towards ``r − b + γ(1 − done)·Q'(s', μ'(s'))`` (``b``: a moving average of
    minibatch mean rewards), one of the actor up ``Q(s, μ(s))``, and one soft update of each target.
    Seeded: the networks' initial weights come from ``torch.manual_seed(seed)`` (without touching
    the global generator) and every draw from ``self.rng``."""

    def __init__(self, n_state: int, *, hidden=300, lr_actor: float = 1e-4, lr_critic: float = 1e-3,
                 tau: float = 0.01, discount: float = 1.0, batch: int = 64, memory: int = 10_000,
                 init_sigma: float = 0.5, sigma_decay: float = 0.95, baseline_alpha: float = 0.5, seed: int = 0):
        hidden = (hidden, hidden) if isinstance(hidden, int) else tuple(hidden)
        if not 0 < tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {tau!r}")
        if batch < 1 or memory < 1:
            raise ValueError(f"batch and memory must be >= 1, got {batch}, {memory}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor, self.critic = _Actor(n_state, hidden), _Critic(n_state, hidden)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=lr_actor)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=lr_critic)
        self.tau, self.discount, self.batch = tau, discount, batch
        self.init_sigma, self.sigma_decay, self.baseline_alpha = init_sigma, sigma_decay, baseline_alpha
        self.memory = deque(maxlen=memory)
        self.baseline = None
        self.rng = np.random.default_rng(seed)

    def sigma(self, learned: int) -> float:
        """The exploration noise of the ``learned``-th episode after the warm-up (0-based)."""
        return self.init_sigma * self.sigma_decay ** learned

    def random_action(self) -> float:
        return float(self.rng.uniform(0.0, 1.0))

    def act(self, state, sigma: float = 0.0) -> float:
        with torch.no_grad():
            mu = float(self.actor(torch.as_tensor(state, dtype=torch.float32)[None])[0, 0])
        return truncated_normal(mu, sigma, self.rng)

    def observe(self, state, action: float, reward: float, next_state, done: bool) -> None:
        self.memory.append((np.asarray(state, np.float32), float(action), float(reward),
                            np.asarray(next_state, np.float32), float(done)))

    def soft_update(self, target: nn.Module, source: nn.Module) -> None:
        """``target ← (1 − τ)·target + τ·source``, parameter by parameter."""
        with torch.no_grad():
            for t, s in zip(target.parameters(), source.parameters(), strict=True):
                t.mul_(1 - self.tau).add_(s, alpha=self.tau)

    def update(self):
        """One step on a minibatch from memory; returns (critic loss, actor loss), or None if empty."""
        if not self.memory:
            return None
        idx = self.rng.choice(len(self.memory), size=min(self.batch, len(self.memory)), replace=False)
        batch = [self.memory[i] for i in idx]
        s, s2 = (torch.as_tensor(np.stack([b[k] for b in batch])) for k in (0, 3))
        a, r, done = (torch.tensor([[b[k]] for b in batch], dtype=torch.float32) for k in (1, 2, 4))
        mean = float(r.mean())
        self.baseline = mean if self.baseline is None else self.baseline + self.baseline_alpha * (mean - self.baseline)
        with torch.no_grad():
            target = r - self.baseline + self.discount * (1 - done) * self.critic_target(s2, self.actor_target(s2))
        loss_c = nn.functional.mse_loss(self.critic(s, a), target)
        self.opt_critic.zero_grad()
        loss_c.backward()
        self.opt_critic.step()
        loss_a = -self.critic(s, self.actor(s)).mean()
        self.opt_actor.zero_grad()
        loss_a.backward()
        self.opt_actor.step()
        self.soft_update(self.actor_target, self.actor)
        self.soft_update(self.critic_target, self.critic)
        return loss_c.item(), loss_a.item()


@dataclass
class AMCResult:
    """Every episode (ratios, MAC and cost fractions, validation accuracy, reward) and the final
    model's figures; ``method`` is ``"amc"`` or ``"random"``."""

    episodes: list = field(default_factory=list)
    best: dict = field(default_factory=dict)
    macs: float = 1.0
    cost: float = 1.0
    channels: dict = field(default_factory=dict)
    val_before_finetune: float = 0.0
    val_acc: float = 0.0
    test_acc: float = 0.0
    method: str = "amc"

    def to_dict(self) -> dict:
        return {"method": self.method, "episodes": self.episodes, "best": self.best, "macs": self.macs,
                "cost": self.cost, "channels": self.channels, "val_before_finetune": self.val_before_finetune,
                "val_acc": self.val_acc, "test_acc": self.test_acc}

    def plot(self, path, warmup: int) -> None:
        """Validation accuracy of every episode and the best so far."""
        from sw.prune.plots import line_plot

        acc = [e["val_acc"] for e in self.episodes]
        best = np.maximum.accumulate(acc).tolist()
        xs = list(range(1, len(acc) + 1))
        series = {"episode (no fine-tuning)": (xs, acc), "best so far": (xs, best)}
        if warmup > 0:
            series["end of random warm-up"] = ([warmup, warmup], [min(acc), max(acc)])
        line_plot(path, series, "episode", "val accuracy after pruning (%)",
                  "AMC search" if self.method == "amc" else "random search")


def apply_ratios(model, ratios: dict, criterion=None, units: dict | None = None):
    """A copy of ``model`` with ``ratios[layer]`` of each layer's channel-group units (lowest score)
    removed; the kept count is ``floor((1 - ratio) × n)``, at least 1. ``units``: each layer's
    group size when known (saves tracing the model twice)."""
    m = copy.deepcopy(model)
    fractions = {}
    if ratios and (units is None or any(n not in units for n in ratios)):
        pruner = Pruner(m, Channel(), criterion or L1(), layers=list(ratios))
        units = {n: pruner.groups[n].units for n in ratios}
    for n, r in ratios.items():
        c = units[n]
        removed = c - max(1, int(np.floor((1 - r) * c + 1e-9)))
        if removed:
            fractions[n] = removed / c
    if fractions:
        pruner = Pruner(m, Channel(), criterion or L1(), layers=list(fractions))
        pruner.prune(fractions)
        pruner.remove()
    return m


class _Env:
    """The layer-by-layer walk of one episode: states, the constraint, the pruned model's reward."""

    def __init__(self, model, data, target: float, max_ratio: float, layer_cost=None, eval_samples=None,
                 bn_samples: int = 0):
        if not 0 < target < 1:
            raise ValueError(f"target must be a resource fraction in (0, 1), got {target!r}")
        if not 0 < max_ratio < 1:
            raise ValueError(f"max_ratio must be in (0, 1), got {max_ratio!r}")
        self.model, self.data, self.max_ratio = model, data, max_ratio
        self.layers = layers = _Layers(model, layer_cost)
        self.budget = target * layers.base
        floor = layers.total({n: 1 - max_ratio for n in layers.names})
        if floor > self.budget * (1 + 1e-9):
            raise ValueError(f"target {target} is out of reach: removing {max_ratio:.0%} of every removable layer's "
                             f"channels leaves {floor / layers.base:.3f} of the "
                             f"{'MACs' if layer_cost is None else 'cost'}")
        n_val = len(data.y_val)
        if eval_samples is None:
            idx = np.arange(n_val)
        else:
            if int(eval_samples) < 1:
                raise ValueError(f"eval_samples must be >= 1, got {eval_samples!r}")
            # one fixed subset whatever the seed, so searches with different seeds score alike
            idx = np.sort(np.random.default_rng(0).permutation(n_val)[:int(eval_samples)])
        self.x_eval, self.y_eval = data.x_val[idx], data.y_val[idx]
        self.x_bn = bn_subset(data, bn_samples)
        lo, hi = layers.static.min(axis=0), layers.static.max(axis=0)
        self.static = np.where(hi > lo, (layers.static - lo) / np.where(hi > lo, hi - lo, 1), 0.0)
        self.rest = [sum(layers.cost(n, 1.0, 1.0) for n in layers.names[t + 1:]) / layers.base
                     for t in range(len(layers.names))]
        self.n_state = self.static.shape[1] + 3
        self.scorer = _Scorer(model, layers.names, layers.units, layers.base_macs, self.x_eval, self.y_eval,
                              self.x_bn)

    def state(self, t: int, keep: dict, prev: float) -> np.ndarray:
        cut = 1 - self.layers.total(keep) / self.layers.base
        return np.concatenate([self.static[t], [cut, self.rest[t], prev]]).astype(np.float32)

    def pruned(self, ratios: dict):
        """The model with ``ratios`` applied (and its BatchNorm statistics re-estimated if asked)."""
        return self.scorer.pruned(ratios)

    def walk(self, choose):
        """An episode's choices: ``choose(t, state)`` gives the action in [0, 1] for layer ``t``.
        Returns the ratios and the steps ``(state, action, next state, done)``; no model is pruned."""
        layers, keep, prev, steps, ratios = self.layers, {}, 0.0, [], {}
        s = self.state(0, keep, prev)
        for t, name in enumerate(layers.names):
            a = float(np.clip(choose(t, s), 0.0, 1.0))
            ratio = max(a * self.max_ratio, layers.least_ratio(t, keep, self.budget, self.max_ratio))
            ratios[name], keep[name], prev = ratio, 1 - ratio, ratio / self.max_ratio
            done = t == len(layers.names) - 1
            s2 = s if done else self.state(t + 1, keep, prev)
            steps.append((s, a, s2, done))
            s = s2
        return ratios, steps

    def record(self, ratios: dict, scored: dict) -> dict:
        """An episode's record from its ratios and what :class:`_Scorer` measured."""
        acc = scored["val_acc"]
        return {"ratios": ratios, "macs": scored["macs"], "cost": self.layers.total(scored["kept"]) / self.layers.base,
                "val_acc": acc, "reward": acc / 100 - 1}

    def run(self, choose):
        """One episode in this process (:meth:`walk`, then the pruned model scored): its record and steps."""
        ratios, steps = self.walk(choose)
        with single_thread():                   # as a worker scores one, so every episode scores alike
            scored = self.scorer(ratios)
        return self.record(ratios, scored), steps


class _Scorer:
    """What scoring an episode needs: the model and the evaluation samples, not the data set or
    the cost function (which need not pickle); a task of :mod:`sw.prune.parallel`."""

    def __init__(self, model, names, units: dict, base_macs: int, x_eval, y_eval, x_bn):
        self.model, self.names, self.units, self.base_macs = model, list(names), dict(units), base_macs
        self.x_eval, self.y_eval, self.x_bn = x_eval, y_eval, x_bn

    def pruned(self, ratios: dict):
        m = apply_ratios(self.model, ratios, units=self.units)
        if len(self.x_bn):
            recalibrate_bn(m, self.x_bn)
        return m

    def __call__(self, ratios: dict) -> dict:
        """The pruned model's kept share of each layer's channels, MAC fraction and accuracy."""
        m = self.pruned(ratios)
        mods, mods0 = dict(m.named_modules()), dict(self.model.named_modules())
        return {"kept": {n: mods[n].weight.shape[0] / mods0[n].weight.shape[0] for n in self.names},
                "macs": model_stats(m).macs / self.base_macs, "val_acc": evaluate(m, self.x_eval, self.y_eval)}


def _score(scorer: _Scorer, ratios: dict) -> dict:
    return scorer(ratios)


def _search(env, episodes: int, policy, progress: bool, desc: str, method: str, executor=None) -> AMCResult:
    """``episodes`` episodes of ``env``; ``policy(ep)`` gives the episode's ``choose``,
    ``policy.observe(ep, record, steps)`` (when present) sees the result, and ``policy.independent(ep)``
    says whether the episode's actions depend on no earlier result (random ones). A run of
    independent episodes is walked here in order (so the random draws are as in a sequential run),
    its pruned models scored by ``executor`` (default this process), and the records taken in
    episode order; the others run here one by one."""
    ex = executor or sequential()
    result = AMCResult(method=method)
    bar = tqdm(total=episodes, desc=desc, disable=not progress, leave=False)
    independent = getattr(policy, "independent", lambda ep: False)

    def take(ep, record, steps):
        result.episodes.append({"episode": ep + 1, **record})
        if not result.best or record["val_acc"] > result.best["val_acc"]:
            result.best = result.episodes[-1]
        if hasattr(policy, "observe"):
            policy.observe(ep, record, steps)

    shown = [-1.0]      # the best accuracy the bar shows while a run of episodes is scored

    def done(i, scored):
        shown[0] = max(shown[0], scored["val_acc"])
        bar.update()
        bar.set_postfix(best=f"{shown[0]:.2f}", acc=f"{scored['val_acc']:.2f}")

    ep = 0
    while ep < episodes:
        if not independent(ep):
            record, steps = env.run(policy(ep))
            take(ep, record, steps)
            bar.update()
            bar.set_postfix(best=f"{result.best['val_acc']:.2f}", acc=f"{record['val_acc']:.2f}",
                            cost=f"{record['cost']:.3f}")
            ep += 1
            continue
        run = []
        while ep + len(run) < episodes and independent(ep + len(run)):
            run.append(env.walk(policy(ep + len(run))))
        shown[0] = result.best["val_acc"] if result.best else -1.0
        scored = ex.map(_score, [ratios for ratios, _ in run], shared=env.scorer, done=done)
        for (ratios, steps), sc in zip(run, scored, strict=True):
            take(ep, env.record(ratios, sc), steps)
            ep += 1
    bar.close()
    return result


def _finish(env, result: AMCResult, data, cfg, final_epochs: int, lr_scale: float, progress: bool):
    """Apply the best episode's ratios to the model, fine-tune it, and fill in ``result``'s figures."""
    layers = env.layers
    m = env.pruned(result.best["ratios"])
    result.val_before_finetune = evaluate(m, data.x_val, data.y_val)
    if final_epochs:
        finetune(m, data, cfg, final_epochs, lr_scale=lr_scale, progress=progress,
                 desc=f"{result.method} fine-tune")
    result.macs = model_stats(m).macs / layers.base_macs
    mods, mods0 = dict(m.named_modules()), dict(env.model.named_modules())
    result.channels = {n: mods[n].weight.shape[0] for n in layers.names}
    result.cost = layers.total({n: result.channels[n] / mods0[n].weight.shape[0] for n in layers.names}) / layers.base
    result.val_acc = evaluate(m, data.x_val, data.y_val)
    result.test_acc = evaluate(m, data.x_test, data.y_test)
    return m, result


class _RandomPolicy:
    """Random search's episodes: every action uniform in [0, 1] from one seeded generator."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def independent(self, ep) -> bool:
        return True

    def __call__(self, ep):
        return lambda t, s: float(self.rng.uniform(0.0, 1.0))


class _AgentPolicy:
    """AMC's episodes: random actions during the warm-up, then the actor with decaying noise; every
    step is stored with the episode's reward, and each learned episode is followed by one update per step."""

    def __init__(self, agent: DDPG, warmup: int):
        self.agent, self.warmup = agent, warmup

    def independent(self, ep) -> bool:
        return ep < self.warmup         # random actions; the warm-up makes no updates

    def __call__(self, ep):
        if ep < self.warmup:
            return lambda t, s: self.agent.random_action()
        sigma = self.agent.sigma(ep - self.warmup)
        return lambda t, s: self.agent.act(s, sigma)

    def observe(self, ep, record, steps):
        for s, a, s2, done in steps:
            self.agent.observe(s, a, record["reward"], s2, done)
            if ep >= self.warmup:
                self.agent.update()


def amc(model, data, cfg, target: float, episodes: int = 300, warmup: int = 100, max_ratio: float = 0.8,
        final_epochs: int = 12, lr_scale: float = 0.1, seed: int = 0, hidden: int = 300, batch: int = 64,
        progress: bool = True, *, lr_actor: float = 1e-4, lr_critic: float = 1e-3, tau: float = 0.01,
        discount: float = 1.0, memory: int = 100, init_sigma: float = 0.5, sigma_decay: float = 0.95,
        layer_cost=None, eval_samples: int | None = None, bn_samples: int = 0, executor=None):
    """Search per-layer channel ratios of ``model`` whose resource (default: dense MACs; else the sum
    of ``layer_cost(name, out_kept, in_kept)`` over its Conv2d/Linear layers) is at most ``target`` ×
    the original's; return ``(pruned_and_finetuned_model, AMCResult)``. The input model is untouched.

    ``memory``: replay transitions per removable layer; ``eval_samples``: score each episode on that
    many validation samples (one fixed subset; default all); ``bn_samples``: re-estimate the pruned
    model's BatchNorm statistics on that many training samples (one fixed subset) before scoring it
    (default 0: keep the original statistics, as AMC does).

    ``executor`` (:func:`sw.prune.parallel.executor`: local processes or Ray; default this process)
    scores the random warm-up episodes, which are independent: their actions are drawn here in
    episode order and their transitions stored in that order, so the search is the same in every
    mode. The learned episodes after the warm-up each depend on the agent the previous one
    updated, so they run here one by one."""
    if not 0 <= warmup < episodes:
        raise ValueError(f"need 0 <= warmup < episodes, got warmup {warmup}, episodes {episodes}")
    env = _Env(model, data, target, max_ratio, layer_cost, eval_samples, bn_samples)
    agent = DDPG(env.n_state, hidden=hidden, lr_actor=lr_actor, lr_critic=lr_critic, tau=tau, discount=discount,
                 batch=batch, memory=memory * len(env.layers.names), init_sigma=init_sigma, sigma_decay=sigma_decay,
                 seed=seed)
    result = _search(env, episodes, _AgentPolicy(agent, warmup), progress, "AMC", "amc", executor)
    return _finish(env, result, data, cfg, final_epochs, lr_scale, progress)


def random_search(model, data, cfg, target: float, episodes: int = 300, max_ratio: float = 0.8, seed: int = 0,
                  final_epochs: int = 0, lr_scale: float = 0.1, progress: bool = True, *, layer_cost=None,
                  eval_samples: int | None = None, bn_samples: int = 0, executor=None):
    """AMC's baseline: ``episodes`` episodes of the same environment (constraint, evaluation) with
    every action uniform in [0, 1]; the best is applied (and fine-tuned ``final_epochs``) as in
    :func:`amc`. Returns ``(model, AMCResult)`` with ``method == "random"``; with the same seed its
    episodes are AMC's warm-up episodes. Every episode is independent: ``executor`` (default this
    process) scores them, with the same result in every mode (see :func:`amc`)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = _Env(model, data, target, max_ratio, layer_cost, eval_samples, bn_samples)
    result = _search(env, episodes, _RandomPolicy(seed), progress, "random search", "random", executor)
    return _finish(env, result, data, cfg, final_epochs, lr_scale, progress)
