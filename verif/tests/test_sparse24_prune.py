"""2:4 (and N:M) pruning of nn.Linear/nn.Conv2d layers with the toolkit's NM granularity, held
through fine-tuning, and the dense / one-shot / fine-tuned accuracy experiment."""

import numpy as np
import pytest
import torch
from torch import nn

from sw.pack import mask_nm, pack_24, unpack_24
from sw.prune import nm_accuracy as experiment
from sw.prune.granularity import NM, nm_mask
from sw.prune.graph import prunable_layers
from sw.prune.pruner import Pruner


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: one thread each (two xdist workers on two cores would otherwise oversubscribe)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 6), nn.ReLU(),
                         nn.Linear(6, 3))


def prune_nm(model, n, m):
    """N:M on every layer of ``model`` whose input dimension is a multiple of ``m``; the pruner."""
    nm = NM(n, m)
    layers = [k for k, mod in prunable_layers(model).items() if nm.fits(mod)]
    pruner = Pruner(model, nm, layers=layers, example_input=torch.zeros(1, 1, 4, 4))
    pruner.prune()
    return pruner


def test_masks_group_along_the_input_axis():
    torch.manual_seed(1)
    lin = nn.Linear(16, 5)
    want = torch.from_numpy(mask_nm(lin.weight.detach().numpy(), 2, 4))
    assert torch.equal(nm_mask(lin.weight, 2, 4), want)
    conv = nn.Conv2d(8, 4, 3)
    mask = nm_mask(conv.weight, 2, 4)
    w = conv.weight.detach()
    for o, i, kh, kw in [(0, 0, 0, 0), (3, 4, 2, 1), (1, 4, 1, 2)]:
        along_channels = w[o, i: i + 4, kh, kw].numpy()[None]
        assert mask[o, i: i + 4, kh, kw].tolist() == mask_nm(along_channels, 2, 4)[0].tolist()
    assert (mask.permute(0, 2, 3, 1).reshape(-1, 4).sum(dim=1) == 2).all()
    with pytest.raises(ValueError, match="Linear .* or Conv2d"):
        nm_mask(torch.zeros(4), 2, 4)


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (2, 8), (4, 8)])
def test_nm_prunes_the_layers_it_fits(n, m):
    model = small_model()
    before = {k: v.detach().clone() for k, v in model.state_dict().items() if k.endswith("weight")}
    with pytest.raises(ValueError, match=rf"{n}:{m} pruning of layer 0: its input dimension \(1\) is not a "
                                         rf"multiple of m={m}"):
        Pruner(small_model(), NM(n, m), example_input=torch.zeros(1, 1, 4, 4))
    pruner = prune_nm(model, n, m)
    assert list(pruner.layers) == (["2", "5", "7"] if 12 % m == 0 else ["2", "5"])
    assert pruner.granularity.violations(pruner) == {}
    conv = model[2].weight.detach()
    assert (conv.permute(0, 2, 3, 1).reshape(-1, m) != 0).sum(dim=1).max() <= n
    kept = model[2].weight_mask.bool()
    assert torch.equal(conv[kept], before["2.weight"][kept])            # survivors are unchanged
    assert torch.equal(model[0].weight.detach(), before["0.weight"])    # dense layer untouched
    assert torch.equal(model[9].weight.detach(), before["9.weight"])


def test_mask_holds_through_fine_tuning():
    model = small_model()
    pruner = prune_nm(model, 2, 4)
    zeros = (model[5].weight == 0).clone()
    start = model[5].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(32, 1, 4, 4), torch.randint(0, 3, (32,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model(x)                                         # the pre-hook re-zeroes what the optimiser moved
    assert not torch.equal(model[5].weight.detach(), start)              # training moved the survivors
    assert (model[5].weight[zeros] == 0).all()
    assert pruner.granularity.violations(pruner) == {}
    assert isinstance(model[5].weight, nn.Parameter)
    w = model[5].weight.detach().numpy()
    assert np.array_equal(unpack_24(*pack_24(w)), w)                     # packs as docs/spec.md §4 2:4


def test_nm_violations_sees_a_broken_layer():
    model = small_model()
    dense = model[5].weight.detach().clone()
    pruner = prune_nm(model, 2, 4)
    with torch.no_grad():
        model[5].weight_mask.fill_(1)
        model[5].weight.copy_(dense)
    model(torch.randn(1, 1, 4, 4))
    assert pruner.granularity.violations(pruner) == {"5": 12 * 32}


def test_experiment_small(tmp_path, monkeypatch):
    """A short run of the accuracy table: learns, prunes to the pattern, fine-tunes, writes results."""
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "cache"))
    rows = experiment.run_experiment(patterns=((2, 4), (2, 8)), train_epochs=3, finetune_epochs=1)
    assert [(r["model"], r["pattern"]) for r in rows] == [("lenet300", "2:4"), ("lenet300", "2:8"),
                                                          ("cnn", "2:4"), ("cnn", "2:8")]
    for r in rows:
        assert r["dense"] > 80                   # 10 classes: chance is 10%
        assert 0.0 <= r["one_shot"] <= 100.0 and r["finetuned"] > 50
    assert rows[0]["sparsity"] == 0.5 and rows[0]["dense_layers"] == []
    # LeNet-300-100's fc2 and fc3 have 300 and 100 inputs (not multiples of 8); the CNN's conv1 one
    # input channel.
    assert rows[1]["dense_layers"] == ["fc2 (Linear)", "fc3 (Linear)"]
    assert rows[1]["sparsity"] == pytest.approx(0.75 * 64 * 300 / (64 * 300 + 300 * 100 + 100 * 10))
    assert rows[2]["dense_layers"] == ["conv1 (Conv2d)"] and 0.45 < rows[2]["sparsity"] < 0.5
    assert rows[3]["dense_layers"] == ["conv1 (Conv2d)", "fc3 (Linear)"]
    paths = experiment.write_results(rows, tmp_path)
    assert [p.name for p in paths] == list(experiment.RESULT_FILES) and all(p.stat().st_size for p in paths)
    assert "| lenet300 | 2:4 |" in (tmp_path / "results.md").read_text()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        experiment.write_results(rows, tmp_path)
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        experiment.main(["--out", str(tmp_path)])


def test_finetuned_24_lenet_layer(tmp_path, monkeypatch):
    """A short run on the 8×8 digits: fc2 of a 2:4 LeNet-300-100 as int8 2:4 weights and the int8
    inputs it sees on test digits, scaled by powers of two (docs/spec.md §1.4's rule, to int8), whose
    integer product rescaled matches the float layer; the accuracies are reported."""
    from sw.formats import INT8_MAX
    from sw.pack import check_24

    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "cache"))
    layer = experiment.finetuned_24_lenet_layer("fc2", n_inputs=7, data="digits", train_epochs=3,
                                                finetune_epochs=1)
    assert layer.name == "fc2" and layer.pruned == ("fc1", "fc2", "fc3")
    assert layer.weight.dtype == np.int8 and layer.weight.shape == (100, 300)
    check_24(layer.weight)
    assert np.count_nonzero(layer.weight) <= layer.weight.size // 2
    # The largest power of two that fits: the largest weight lands in the top octave of int8.
    assert (INT8_MAX + 1) // 2 <= np.abs(layer.weight.astype(np.int64)).max() <= INT8_MAX
    assert layer.x.dtype == np.int8 and layer.x.shape == (7, 300) and layer.x.min() >= 0    # after a ReLU
    assert layer.labels.shape == (7,) and layer.float_out.shape == (7, 100)
    y = layer.x.astype(np.int64) @ layer.weight.astype(np.int64).T * 2.0 ** -(layer.weight_exp + layer.in_exp)
    assert np.abs(y - layer.float_out).max() < 0.05 * np.abs(layer.float_out).max()
    for acc in (layer.dense, layer.one_shot, layer.finetuned, layer.quantized):
        assert 50 < acc <= 100
    assert abs(layer.quantized - layer.finetuned) < 5

    only = experiment.finetuned_24_lenet_layer("fc3", n_inputs=2, data="digits", train_epochs=3,
                                               finetune_epochs=1, prune_all=False)
    assert only.pruned == ("fc3",) and only.weight.shape == (10, 100) and only.x.shape == (2, 100)
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "untouched"))
    with pytest.raises(ValueError, match="no layer 'fc4'; its layers are fc1, fc2, fc3"):
        experiment.finetuned_24_lenet_layer("fc4", data="digits", train_epochs=3)
    with pytest.raises(ValueError, match="n_inputs"):
        experiment.finetuned_24_lenet_layer("fc2", n_inputs=0, data="digits", train_epochs=3)
    assert not (tmp_path / "untouched").exists()          # refused before any training
