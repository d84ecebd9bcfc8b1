"""Pruned models save and load as a state_dict plus a recorded architecture (safetensors, no pickle)."""

import json
import struct

import pytest
import torch
from torch import nn

from sw.models.io import load_model, save_model
from sw.models.train import finetune
from sw.prune.granularity import Channel
from sw.prune.masks import get_mask
from sw.prune.pruner import Pruner
from sw.prune.share import share_weights
from verif.tests.prune_common import CFG, digits, trained_cnn, trained_mlp


def same_outputs(a, b):
    x = torch.as_tensor(digits().x_test[:32])
    a.eval()
    b.eval()
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def test_masked_model_round_trip_and_masks_still_bind(tmp_path):
    m = trained_mlp()
    Pruner(m).prune(0.7)
    path = save_model(m, tmp_path / "m.safetensors", info={"note": "x"})
    back, meta = load_model(path)
    assert meta["info"] == {"note": "x"} and meta["architecture"]["masks"] == {n: ["weight"] for n in
                                                                                ("fc1", "fc2", "fc3")}
    assert same_outputs(m, back)
    for n in ("fc1", "fc2", "fc3"):
        assert torch.equal(get_mask(getattr(back, n)), get_mask(getattr(m, n)))
    finetune(back, digits(), CFG, 1, progress=False)
    assert torch.all(back.fc1.weight[get_mask(back.fc1) == 0] == 0)


def test_channel_removed_cnn_round_trip(tmp_path):
    m = trained_cnn()
    p = Pruner(m, Channel())
    p.prune(0.5)
    p.remove()
    back, meta = load_model(save_model(m, tmp_path / "c.safetensors"))
    assert meta["architecture"]["modules"]["conv2"]["out_channels"] == 8
    assert back.conv2.weight.shape == m.conv2.weight.shape and back.fc1.in_features == m.fc1.in_features
    assert back.bn2.running_var.shape == (8,) and torch.equal(back.bn2.running_var, m.bn2.running_var)
    assert same_outputs(m, back)


def test_shared_model_round_trip(tmp_path):
    m = trained_mlp()
    Pruner(m).prune(0.6)
    share_weights(m)
    back, meta = load_model(save_model(m, tmp_path / "s.safetensors"))
    assert meta["architecture"]["shared"] == {"fc1": 15, "fc2": 15, "fc3": 15}
    assert torch.equal(back.fc2.weight_index, m.fc2.weight_index)
    assert same_outputs(m, back)


def test_the_file_is_safetensors_with_json_metadata(tmp_path):
    path = save_model(trained_mlp(), tmp_path / "m.safetensors")
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    arch = json.loads(header["__metadata__"]["architecture"])
    assert arch["class"] == "MLP" and arch["config"]["hidden"] == [64, 32]
    assert b"\x80\x04" not in raw[:8 + n]          # no pickle protocol marker in the header


def test_never_overwrites_without_force(tmp_path):
    m = trained_mlp()
    path = save_model(m, tmp_path / "m.safetensors")
    before = path.read_bytes()
    Pruner(m).prune(0.5)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_model(m, path)
    assert path.read_bytes() == before
    save_model(m, path, force=True)
    assert path.read_bytes() != before


def test_unsavable_and_unloadable(tmp_path):
    with pytest.raises(ValueError, match="cannot record the architecture of a Sequential"):
        save_model(nn.Sequential(nn.Linear(2, 2)), tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a sparsehw model"):
        load_model(tmp_path / "plain.safetensors")
