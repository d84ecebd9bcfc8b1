"""2:4 (and N:M) pruning of nn.Linear/nn.Conv2d layers, held through fine-tuning."""

import numpy as np
import pytest
import torch
from torch import nn

from sw.pack import mask_nm, pack_24, unpack_24
from sw.sparse24 import experiment
from sw.sparse24.prune import apply_nm, nm_mask, nm_violations, remove_nm


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
def test_apply_nm_reports_and_prunes(n, m):
    model = small_model()
    before = {k: v.detach().clone() for k, v in model.state_dict().items() if k.endswith("weight")}
    report = apply_nm(model, n, m)
    assert report["0"] == f"dense: 1 input channels is not a multiple of {m}"
    assert report["2"] == f"{n}:{m}" and report["5"] == f"{n}:{m}"
    assert report["7"] == f"{n}:{m}" if 12 % m == 0 else report["7"].startswith("dense: 12 input features")
    assert report["9"].startswith("dense: 6 input features")
    assert nm_violations(model, n, m) == {}
    conv = model[2].weight.detach()
    assert (conv.permute(0, 2, 3, 1).reshape(-1, m) != 0).sum(dim=1).max() <= n
    kept = model[2].weight_mask.bool()
    assert torch.equal(conv[kept], before["2.weight"][kept])            # survivors are unchanged
    assert torch.equal(model[0].weight.detach(), before["0.weight"])    # dense layer untouched


def test_mask_holds_through_fine_tuning():
    model = small_model()
    apply_nm(model, 2, 4)
    zeros = (model[5].weight == 0).clone()
    start = model[5].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(32, 1, 4, 4), torch.randint(0, 3, (32,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model(x)                                         # the pre-hook recomputes weight from weight_orig
    assert not torch.equal(model[5].weight.detach(), start)              # training moved the survivors
    assert (model[5].weight[zeros] == 0).all()
    assert nm_violations(model, 2, 4) == {}
    remove_nm(model)
    assert not hasattr(model[5], "weight_orig") and isinstance(model[5].weight, nn.Parameter)
    w = model[5].weight.detach().numpy()
    assert np.array_equal(unpack_24(*pack_24(w)), w)                     # packs as SPEC §4 2:4


def test_nm_violations_sees_a_broken_layer():
    model = small_model()
    apply_nm(model, 2, 4)
    with torch.no_grad():
        model[5].weight_mask.fill_(1)
    model(torch.randn(1, 1, 4, 4))
    assert nm_violations(model, 2, 4) == {"5": 12 * 32}


def test_experiment_small(tmp_path):
    """A short run of the accuracy table: learns, prunes to the pattern, fine-tunes, writes results."""
    rows = experiment.run_experiment(models=("mlp", "cnn"), patterns=((2, 4),), epochs=3, finetune_epochs=1,
                                     lr=3e-3)
    assert [(r["model"], r["pattern"]) for r in rows] == [("mlp", "2:4"), ("cnn", "2:4")]
    for r in rows:
        assert r["dense"] > 0.8                  # 10 classes: chance is 0.1
        assert 0.0 <= r["one_shot"] <= 1.0 and r["finetuned"] > 0.5
    assert rows[0]["sparsity"] == 0.5 and rows[0]["dense_layers"] == []
    assert rows[1]["dense_layers"] == ["0 (Conv2d)"] and 0.45 < rows[1]["sparsity"] < 0.5
    paths = experiment.write_results(rows, tmp_path)
    assert [p.name for p in paths] == list(experiment.RESULT_FILES) and all(p.stat().st_size for p in paths)
    assert "| mlp | 2:4 |" in (tmp_path / "results.md").read_text()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        experiment.write_results(rows, tmp_path)
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        experiment.main(["--out", str(tmp_path)])


def test_digits_split_is_stratified_and_offline():
    xtr, ytr, xte, yte = experiment.load_digits_split(0)
    assert xtr.shape[1:] == (1, 8, 8) and xtr.shape[0] + xte.shape[0] == 1797
    assert 0.0 <= float(xtr.min()) and float(xtr.max()) <= 1.0
    assert set(torch.bincount(yte).tolist()) <= set(range(50, 58))
