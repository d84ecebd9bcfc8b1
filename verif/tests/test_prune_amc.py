"""AMC: the agent's resource model, the DDPG agent on a synthetic task, the constraint in every
episode, random search, a pluggable layer cost, the ResNet, bad input."""

import numpy as np
import pytest
import torch

from sw.models.train import evaluate, recalibrate_bn
from sw.prune.amc import DDPG, _Layers, amc, apply_ratios, random_search, truncated_normal
from sw.prune.report import model_stats
from verif.tests.prune_common import CFG, digits, one_thread, trained_cnn, trained_mlp, trained_resnet  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("make", [trained_cnn, lambda: trained_mlp((64, 32)), trained_resnet],
                         ids=["cnn", "mlp", "resnet"])
def test_mac_model_is_exact_for_the_rounded_channel_counts(make):
    m = make()
    layers = _Layers(m)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ratios = {n: float(rng.uniform(0, 0.8)) for n in layers.names}
        small = apply_ratios(m, ratios)
        assert model_stats(apply_ratios(m, ratios, units=layers.units)).macs == model_stats(small).macs
        mods, mods0 = dict(small.named_modules()), dict(m.named_modules())
        kept = {n: mods[n].weight.shape[0] / mods0[n].weight.shape[0] for n in layers.names}
        assert all(kept[n] <= 1 - ratios[n] + 1e-9 for n in layers.names)     # rounding never keeps more
        assert model_stats(small).macs == pytest.approx(layers.total(kept))
        assert layers.total(kept) <= layers.total({n: 1 - r for n, r in ratios.items()}) + 1e-9
    assert model_stats(m).macs == layers.base_macs == layers.base             # the input is untouched


# ---------------------------------------------------------------------- the agent alone
OPTIMUM = np.array([0.1, 0.9, 0.1, 0.9])     # the best action at each of four steps


def _synthetic_episode(choose):
    """Four steps, state = one-hot step and the previous action; the episode's reward, shared by
    every step as in AMC, is −Σ (a_t − OPTIMUM_t)²: 0 at best, −0.64 for the best constant action,
    about −0.97 on average for uniform actions."""
    steps, actions, prev = [], [], 0.0
    s = np.array([1, 0, 0, 0, prev], np.float32)
    for t in range(4):
        a = choose(s)
        actions.append(a)
        done = t == 3
        s2 = s if done else np.array([*np.eye(4)[t + 1], a], np.float32)
        steps.append((s, a, s2, done))
        s = s2
    return -float(((np.array(actions) - OPTIMUM) ** 2).sum()), steps


def test_ddpg_learns_what_random_actions_do_not_find():
    warmup, learned = 50, 100
    agent = DDPG(5, seed=0)                    # the paper's defaults: 300/300, lr 1e-4/1e-3, τ 0.01, batch 64
    rewards = []
    for ep in range(warmup + learned):
        if ep < warmup:
            r, steps = _synthetic_episode(lambda s: agent.random_action())
        else:
            sigma = agent.sigma(ep - warmup)
            r, steps = _synthetic_episode(lambda s, sigma=sigma: agent.act(s, sigma))
        rewards.append(r)
        for s, a, s2, done in steps:
            agent.observe(s, a, r, s2, done)
            if ep >= warmup:
                assert agent.update() is not None
    rng = np.random.default_rng(1)
    random = [_synthetic_episode(lambda s: float(rng.uniform()))[0] for _ in range(learned)]
    greedy, _ = _synthetic_episode(lambda s: agent.act(s, 0.0))
    after = float(np.mean(rewards[warmup:]))
    # the same number of episodes: the learned ones (noise included) beat uniform actions by far, and
    # beat every constant action (-0.64 at best), so the policy depends on the state
    assert np.mean(random) < -0.8 and after > -0.45, (np.mean(random), after)
    assert np.mean(rewards[-25:]) > -0.2 and greedy > -0.15, (rewards[-25:], greedy)


def test_soft_update_moves_the_targets_by_exactly_tau():
    agent = DDPG(3, hidden=8, tau=0.01, seed=0)
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.add_(1.0)
    before = [p.detach().clone() for p in agent.actor_target.parameters()]
    agent.soft_update(agent.actor_target, agent.actor)
    for t, s, b in zip(agent.actor_target.parameters(), agent.actor.parameters(), before, strict=True):
        torch.testing.assert_close(t, 0.99 * b + 0.01 * s, rtol=0, atol=1e-6)
        assert not torch.equal(t, b) and not torch.equal(t, s)
    # one update() step: each target ends at (1 - τ)·itself + τ·its freshly updated network
    for _ in range(5):
        agent.observe(np.zeros(3), 0.5, -1.0, np.ones(3), False)
    old = {k: [p.detach().clone() for p in getattr(agent, k).parameters()] for k in ("actor_target", "critic_target")}
    agent.update()
    for k, net in (("actor_target", agent.actor), ("critic_target", agent.critic)):
        for t, s, b in zip(getattr(agent, k).parameters(), net.parameters(), old[k], strict=True):
            torch.testing.assert_close(t, 0.99 * b + 0.01 * s, rtol=0, atol=1e-6)


def test_exploration_noise_is_truncated_to_the_action_range_and_decays():
    rng = np.random.default_rng(0)
    for mu in (0.0, 0.02, 0.5, 0.97, 1.0):
        for sigma in (0.01, 0.5, 5.0):
            x = np.array([truncated_normal(mu, sigma, rng) for _ in range(200)])
            assert x.min() >= 0.0 and x.max() <= 1.0
    x = np.array([truncated_normal(0.3, 0.05, rng) for _ in range(500)])
    assert abs(x.mean() - 0.3) < 0.01 and 0.04 < x.std() < 0.06          # away from the bounds: N(0.3, 0.05)
    assert truncated_normal(1.7, 0.0, rng) == 1.0
    agent = DDPG(3, hidden=8, seed=0)
    assert [agent.sigma(k) for k in (0, 1, 10)] == pytest.approx([0.5, 0.5 * 0.95, 0.5 * 0.95 ** 10])
    acts = [agent.act(np.full(3, v, np.float32), 0.5) for v in np.linspace(-50, 50, 200)]
    assert min(acts) >= 0 and max(acts) <= 1 and len(set(acts)) == 200
    assert agent.act(np.ones(3), 0.0) == agent.act(np.ones(3), 0.0)          # no noise: μ(s)


# ---------------------------------------------------------------------- the search on real models
def test_every_episode_meets_the_target_and_the_best_is_applied():
    d = digits()
    m = trained_cnn()
    base = model_stats(m).macs
    small, res = amc(m, d, CFG, target=0.5, episodes=16, warmup=6, final_epochs=1, progress=False)
    assert len(res.episodes) == 16 and model_stats(m).macs == base and res.method == "amc"
    assert all(e["macs"] <= 0.5 + 1e-9 and e["cost"] == pytest.approx(e["macs"]) for e in res.episodes)
    assert all(0 <= r <= 0.8 + 1e-9 for e in res.episodes for r in e["ratios"].values())
    assert res.best["val_acc"] == max(e["val_acc"] for e in res.episodes)
    assert res.val_before_finetune == pytest.approx(res.best["val_acc"])     # the best ratios, re-applied
    assert res.macs == pytest.approx(model_stats(small).macs / base) and res.macs <= 0.5
    mods = dict(small.named_modules())
    assert res.channels == {n: mods[n].weight.shape[0] for n in res.channels}
    assert res.test_acc == evaluate(small, d.x_test, d.y_test)


def test_random_search_and_amc_meet_the_budget_and_repeat_for_a_seed():
    d = digits()
    m = trained_cnn()
    kw = {"target": 0.4, "final_epochs": 0, "progress": False, "eval_samples": 60}
    _, rand = random_search(m, d, CFG, episodes=8, seed=3, **kw)
    _, agent = amc(m, d, CFG, episodes=8, warmup=4, seed=3, batch=8, **kw)
    for res in (rand, agent):
        assert len(res.episodes) == 8
        assert all(e["macs"] <= 0.4 + 1e-9 and e["cost"] <= 0.4 + 1e-9 for e in res.episodes)
        assert all(0 <= r <= 0.8 + 1e-9 for e in res.episodes for r in e["ratios"].values())
        # scored on 60 validation digits: every accuracy is a multiple of 1/60
        assert all(abs(e["val_acc"] * 0.6 - round(e["val_acc"] * 0.6)) < 1e-9 for e in res.episodes)
    assert rand.method == "random" and rand.episodes[:4] == agent.episodes[:4]   # AMC's warm-up is random search
    assert agent.episodes[4:] != rand.episodes[4:]
    assert random_search(m, d, CFG, episodes=8, seed=3, **kw)[1].episodes == rand.episodes
    assert amc(m, d, CFG, episodes=8, warmup=4, seed=3, batch=8, **kw)[1].episodes == agent.episodes
    assert random_search(m, d, CFG, episodes=8, seed=4, **kw)[1].episodes != rand.episodes
    # BatchNorm statistics re-estimated before scoring: the same ratios, other accuracies
    _, bn = random_search(m, d, CFG, episodes=8, seed=3, bn_samples=100, **kw)
    assert [e["ratios"] for e in bn.episodes] == [e["ratios"] for e in rand.episodes]
    assert [e["val_acc"] for e in bn.episodes] != [e["val_acc"] for e in rand.episodes]


def test_recalibrated_batchnorm_statistics_are_those_of_the_samples():
    m = trained_cnn()
    x = torch.as_tensor(digits().x_train[:200])
    seen = []
    hook = m.bn1.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    m.train()
    recalibrate_bn(m, x, batch=100)
    hook.remove()
    assert m.training and m.bn1.momentum == 0.1                  # the mode and the momentum are restored
    feats = torch.cat(seen)
    torch.testing.assert_close(m.bn1.running_mean, feats.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert int(m.bn1.num_batches_tracked) == 2


def test_a_layer_cost_replaces_the_mac_count():
    d = digits()
    m = trained_cnn()
    macs = _Layers(m).macs
    only_conv2 = lambda name, out_kept, in_kept: macs[name] * out_kept * in_kept if name == "conv2" else 0.0  # noqa: E731
    with pytest.raises(ValueError, match="out of reach"):       # MACs: conv1 alone keeps more than 5%
        random_search(m, d, CFG, target=0.05, episodes=1, progress=False)
    _, res = random_search(m, d, CFG, target=0.05, episodes=6, seed=0, progress=False, layer_cost=only_conv2)
    for e in res.episodes:
        k1, k2 = 1 - e["ratios"]["conv1"], 1 - e["ratios"]["conv2"]
        assert e["cost"] <= 0.05 + 1e-9 and k1 * k2 <= 0.05 + 1e-9 and e["macs"] > 0.05
    assert res.cost <= 0.05 + 1e-9 and res.macs > res.cost


def test_amc_on_a_resnet_prunes_the_residual_stream_as_one_group():
    d = digits()
    m = trained_resnet()
    small, res = amc(m, d, CFG, target=0.5, episodes=6, warmup=3, batch=8, final_epochs=0, progress=False)
    assert all(e["macs"] <= 0.5 + 1e-9 for e in res.episodes) and res.macs <= 0.5 + 1e-9
    mods = dict(small.named_modules())
    stream = mods["conv1"].weight.shape[0]
    assert {mods[n].weight.shape[0] for n in ("layers.0.0.conv2", "layers.0.1.conv2")} == {stream}
    assert mods["layers.1.0.downsample.0"].weight.shape[0] == mods["layers.1.0.conv2"].weight.shape[0]
    assert small(torch.as_tensor(d.x_val[:4])).shape == (4, d.classes)
    assert res.val_before_finetune == pytest.approx(res.best["val_acc"])


def test_bad_input_is_named():
    d = digits()
    m = trained_cnn()
    for kw, match in (({"target": 1.0}, "target"), ({"target": 0.0}, "target"),
                      ({"target": 0.01}, "out of reach"), ({"target": 0.5, "max_ratio": 1.0}, "max_ratio"),
                      ({"target": 0.5, "episodes": 5, "warmup": 5}, "warmup"),
                      ({"target": 0.5, "eval_samples": 0}, "eval_samples"),
                      ({"target": 0.5, "bn_samples": -1}, "bn_samples")):
        with pytest.raises(ValueError, match=match):
            amc(m, d, CFG, progress=False, **kw)
    with pytest.raises(ValueError, match="episodes"):
        random_search(m, d, CFG, target=0.5, episodes=0, progress=False)
