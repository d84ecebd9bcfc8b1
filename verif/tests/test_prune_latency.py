"""EIE cycles as a pruning resource: packing + the array cycle model on the float model's activations."""

import numpy as np
import pytest
import torch

from sw.cyclemodel.eie import array_timing, layer_work
from sw.pack.eie import pack_eie
from sw.prune.granularity import Channel
from sw.prune.latency import EIECycles
from sw.prune.netadapt import netadapt
from sw.prune.pruner import Pruner
from verif.tests.prune_common import CFG, digits, trained_cnn, trained_mlp


def _inputs_of_linears(model, x):
    """Each Linear layer's input for every sample, captured by forward hooks (not by EIECycles' code)."""
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, i[0].detach().numpy()))
             for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        model.eval()
        model(torch.as_tensor(x))
    for h in hooks:
        h.remove()
    return seen


def test_cycles_are_the_array_model_on_each_layers_real_input():
    d = digits()
    m = trained_mlp((64, 32))
    Pruner(m).prune(0.7)
    x = d.x_val[:5]
    r = EIECycles(x, n_pe=4, queue_depth=2, lnzd_width=4)
    got = r.layer_cycles(m)
    acts = _inputs_of_linears(m, x)
    for k, name in enumerate(("fc1", "fc2", "fc3")):
        w = getattr(m, name).weight.detach().numpy()
        packed = pack_eie((w != 0).astype(np.int64), 4)
        for s in range(len(x)):
            entries, cols = layer_work(packed, acts[name][s])
            want = array_timing(entries, cols, packed.cols, queue_depth=2, lnzd_width=4).cycles
            assert got[s, k] == want
    assert r(m) == pytest.approx(got.sum(axis=1).mean())
    # an all-zero input broadcasts nothing: only the scan of each layer's input is left
    zero = EIECycles(np.zeros((1, 64), dtype=np.float32), n_pe=4)
    dense = trained_mlp((64, 32))
    assert zero(m) == zero(dense) < r(m)


def test_fewer_neurons_fewer_cycles_and_netadapt_meets_a_cycle_budget():
    d = digits()
    m = trained_mlp((64, 32))
    r = EIECycles(d.x_val[:8], n_pe=8)
    before = r.layer_cycles(m).mean(axis=0)
    thin = trained_mlp((64, 32))
    pruner = Pruner(thin, Channel(), layers=["fc1"])
    pruner.prune(0.5)
    pruner.remove()
    after = r.layer_cycles(thin).mean(axis=0)
    assert thin.fc1.out_features == 32 and after[0] < before[0] and after[1] < before[1]   # fc2 sees 32 inputs
    small, res = netadapt(m, d, CFG, target=0.7, step=0.15, short_epochs=0, final_epochs=0, resource=r,
                          progress=False)
    assert r(small) <= 0.7 * before.sum() and res.resource == pytest.approx(r(small) / before.sum())
    assert r(m) == pytest.approx(before.sum())          # the model passed in is untouched


def test_bad_input_is_named():
    d = digits()
    with pytest.raises(ValueError, match="batch of samples"):
        EIECycles(np.zeros(64))
    with pytest.raises(ValueError, match="n_pe"):
        EIECycles(d.x_val[:2], n_pe=0)
    with pytest.raises(ValueError, match="features"):
        EIECycles(np.zeros((1, 10), dtype=np.float32))(trained_mlp((64, 32)))
    with pytest.raises(ValueError, match="Conv2d|chain|Linear"):
        EIECycles(d.x_val[:2])(trained_cnn())
