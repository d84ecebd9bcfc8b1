"""NetAdapt: greedy resource-driven channel removal, on digits with tiny epochs."""

import pytest
import torch

from sw.models.train import evaluate
from sw.prune.criteria import L1
from sw.prune.masks import get_mask
from sw.prune.netadapt import RESOURCES, _remove, dense_macs, netadapt, schedule_iterations, shrink_layer, step_cut
from sw.prune.pruner import Pruner
from sw.prune.report import model_stats
from verif.tests.prune_common import CFG, digits, trained_cnn, trained_mlp


def test_shrink_layer_removes_the_fewest_channels_that_meet_the_budget():
    m = trained_cnn()
    r0 = dense_macs(m)
    for layer, frac in (("conv1", 0.8), ("conv2", 0.9), ("fc1", 0.97)):
        budget = frac * r0
        k, small = shrink_layer(m, layer, budget)
        assert k >= 1 and dense_macs(small) <= budget < dense_macs(_remove(m, layer, k - 1, L1()))
        assert dict(small.named_modules())[layer].weight.shape[0] == dict(m.named_modules())[layer].weight.shape[0] - k
    assert dense_macs(m) == r0                                  # the input is copied, never changed
    assert shrink_layer(m, "fc1", 0.1 * r0) is None             # fc1 alone cannot remove 90 % of the MACs
    assert shrink_layer(m, "conv2", 2 * r0)[0] == 0             # already within budget: nothing removed


def test_netadapt_meets_the_target_one_step_at_a_time():
    d = digits()
    m = trained_cnn()
    r0 = dense_macs(m)
    small, res = netadapt(m, d, CFG, target=0.5, step=0.2, short_epochs=1, final_epochs=2, progress=False)
    assert dense_macs(m) == r0                                  # the model passed in is untouched
    prev = 1.0
    for t in res.trace:     # each budget is one step below what the previous winner really reached
        assert t["budget"] == pytest.approx(max(prev - 0.2, 0.5))
        cands = {n: c for n, c in t["candidates"].items() if c}
        assert all(c["resource"] <= t["budget"] + 1e-12 for c in cands.values())
        assert t["chosen"] == max(cands, key=lambda n: cands[n]["val_acc"])
        prev = cands[t["chosen"]]["resource"]
    assert len(res.trace) >= 2      # a 0.2 step cannot reach 0.5 at once unless one channel is huge
    assert res.resource == pytest.approx(dense_macs(small) / r0) and res.resource <= 0.5
    assert res.stopped == ""
    # the winner really is smaller, and every layer's recorded width is its physical width
    mods = dict(small.named_modules())
    assert res.channels == {n: mods[n].weight.shape[0] for n in res.channels}
    assert small.conv2.in_channels == small.conv1.out_channels == small.bn1.num_features
    assert small(torch.as_tensor(d.x_test[:4])).shape == (4, d.classes)
    assert res.test_acc == evaluate(small, d.x_test, d.y_test) > 50
    assert "| 1 | " in res.table() and res.trace[0]["chosen"] in res.table()
    # seeded: the same search again gives the same trace and model
    again, res2 = netadapt(m, d, CFG, target=0.5, step=0.2, short_epochs=1, final_epochs=2, progress=False)
    assert res2.to_dict() == res.to_dict()
    assert all(torch.equal(a, b) for a, b in zip(small.state_dict().values(), again.state_dict().values(),
                                                 strict=True))


def test_netadapt_takes_any_resource_and_stops_when_no_layer_can_cut():
    d = digits()
    m = trained_mlp((64, 32))
    params = lambda model: model_stats(model).params  # noqa: E731
    _, res = netadapt(m, d, CFG, target=0.6, step=0.4, short_epochs=0, final_epochs=0, resource=params,
                      progress=False)
    assert res.resource <= 0.6 and len(res.trace) == 1
    # only fc2 may shrink: its 32 neurons carry too few weights to reach 10 % of the parameters
    _, res = netadapt(m, d, CFG, target=0.1, step=0.5, short_epochs=0, final_epochs=0, layers=["fc2"],
                      progress=False)
    assert res.trace == [] and "no single layer" in res.stopped and res.resource == 1.0


def test_netadapt_keeps_fine_grained_masks_and_counts_nonzero_macs():
    d = digits()
    m = trained_mlp((64, 32))
    Pruner(m).prune(0.8)
    small, res = netadapt(m, d, CFG, target=0.6, step=0.2, short_epochs=1, final_epochs=1,
                          resource=RESOURCES["nonzero-macs"], progress=False)
    st, st0 = model_stats(small), model_stats(m)
    assert st.nonzero_macs <= 0.6 * st0.nonzero_macs
    assert res.resource == pytest.approx(st.nonzero_macs / st0.nonzero_macs)
    for name in ("fc1", "fc2", "fc3"):      # surviving weights keep their masks, pruned ones stay zero
        layer = getattr(small, name)
        assert get_mask(layer) is not None and torch.equal(layer.weight == 0, get_mask(layer) == 0)
    assert st.masked_sparsity > 0.5


def test_netadapt_rejects_bad_arguments():
    d = digits()
    m = trained_mlp((64, 32))
    for kw, match in (({"target": 0.0, "step": 0.1}, "target"), ({"target": 1.0, "step": 0.1}, "target"),
                      ({"target": 0.5, "step": 0.6}, "step"), ({"target": 0.5, "step": 0.0}, "step"),
                      ({"target": 0.5, "step": 0.1, "short_epochs": -1}, "epoch"),
                      ({"target": 0.5, "step": 0.1, "layers": ["fc9"]}, "unknown layer"),
                      ({"target": 0.5, "step": 0.1, "layers": ["fc3"]}, "fc3"),
                      ({"target": 0.5, "step": 0.1, "resource": lambda _: 0}, "positive"),
                      ({"target": 0.5, "step": 0.1, "step_decay": 0.0}, "step_decay"),
                      ({"target": 0.5, "step": 0.1, "step_decay": 1.5}, "step_decay"),
                      ({"target": 0.5, "step": 0.1, "step_decay": 0.8}, "step_decay 0.8 with step 0.1")):
        with pytest.raises(ValueError, match=match):
            netadapt(m, d, CFG, progress=False, **kw)


def test_the_decaying_step_schedule():
    """Iteration i cuts step × step_decay^(i − 1) of the original from what the previous one reached."""
    assert [step_cut(0.025, 0.96, i) for i in (1, 2, 3)] == pytest.approx([0.025, 0.024, 0.02304])
    # cumulative cuts 0.1, 0.18, 0.244, 0.2952, 0.33616, 0.368928, 0.3951424, 0.41611392
    assert schedule_iterations(0.6, 0.1, 0.8) == 8
    assert schedule_iterations(0.5, 0.2) == 3 and schedule_iterations(0.8, 0.2) == 1    # constant steps
    assert schedule_iterations(0.5, 0.025, 0.96) == 40      # the paper's: 0.625 · (1 − 0.96^n) >= 0.5
    with pytest.raises(ValueError, match="step_decay"):
        schedule_iterations(0.3, 0.025, 0.96)               # the paper's cuts never add up to 0.7
    d = digits()
    m = trained_mlp((64, 32))
    r0 = dense_macs(m)
    small, res = netadapt(m, d, CFG, target=0.75, step=0.1, step_decay=0.7, short_epochs=0, final_epochs=0,
                          layers=["fc1"], progress=False)
    prev = 1.0
    for i, t in enumerate(res.trace, start=1):
        assert t["iteration"] == i and t["budget"] == pytest.approx(max(prev - 0.1 * 0.7 ** (i - 1), 0.75), abs=1e-12)
        prev = t["candidates"][t["chosen"]]["resource"]
        assert prev <= t["budget"] + 1e-12
    assert len(res.trace) >= 3 and res.resource <= 0.75 and res.resource == pytest.approx(dense_macs(small) / r0)
