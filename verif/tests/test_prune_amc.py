"""AMC: the agent's MAC model, the constraint in every episode, the final model, bad input."""

import numpy as np
import pytest

from sw.models.train import evaluate
from sw.prune.amc import _Layers, amc, apply_ratios
from sw.prune.report import model_stats
from verif.tests.prune_common import CFG, digits, trained_cnn, trained_mlp


@pytest.mark.parametrize("make", [trained_cnn, lambda: trained_mlp((64, 32))], ids=["cnn", "mlp"])
def test_mac_model_is_exact_for_the_rounded_channel_counts(make):
    m = make()
    layers = _Layers(m)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ratios = {n: float(rng.uniform(0, 0.8)) for n in layers.names}
        small = apply_ratios(m, ratios)
        mods, mods0 = dict(small.named_modules()), dict(m.named_modules())
        kept = {n: mods[n].weight.shape[0] / mods0[n].weight.shape[0] for n in layers.names}
        assert all(kept[n] <= 1 - ratios[n] + 1e-9 for n in layers.names)     # rounding never keeps more
        assert model_stats(small).macs == pytest.approx(layers.total(kept))
        assert layers.total(kept) <= layers.total({n: 1 - r for n, r in ratios.items()}) + 1e-9
    assert model_stats(m).macs == layers.base_macs                            # the input is untouched


def test_every_episode_meets_the_target_and_the_best_is_applied():
    d = digits()
    m = trained_cnn()
    base = model_stats(m).macs
    small, res = amc(m, d, CFG, target=0.5, episodes=30, warmup=10, final_epochs=1, progress=False)
    assert len(res.episodes) == 30 and model_stats(m).macs == base
    assert all(e["macs"] <= 0.5 + 1e-9 for e in res.episodes)
    assert all(0 <= r <= 0.8 + 1e-9 for e in res.episodes for r in e["ratios"].values())
    assert res.best["val_acc"] == max(e["val_acc"] for e in res.episodes)
    assert res.val_before_finetune == pytest.approx(res.best["val_acc"])     # the best ratios, re-applied
    assert res.macs == pytest.approx(model_stats(small).macs / base) and res.macs <= 0.5
    mods = dict(small.named_modules())
    assert res.channels == {n: mods[n].weight.shape[0] for n in res.channels}
    assert res.test_acc == evaluate(small, d.x_test, d.y_test)
    # seeded: the same search again gives the same episodes
    _, again = amc(m, d, CFG, target=0.5, episodes=30, warmup=10, final_epochs=0, progress=False)
    assert again.episodes == res.episodes


def test_bad_input_is_named():
    d = digits()
    m = trained_cnn()
    for kw, match in (({"target": 1.0}, "target"), ({"target": 0.0}, "target"),
                      ({"target": 0.01}, "out of reach"), ({"target": 0.5, "max_ratio": 1.0}, "max_ratio"),
                      ({"target": 0.5, "episodes": 5, "warmup": 5}, "warmup")):
        with pytest.raises(ValueError, match=match):
            amc(m, d, CFG, progress=False, **kw)
