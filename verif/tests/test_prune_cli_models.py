"""`sparsehw prune channel|slim|netadapt|amc` on the ResNet and the MobileNet (digits, tiny runs)."""

import json

import pytest

from sw.cli import main
from sw.models.io import load_model
from verif.tests.prune_common import one_thread  # noqa: F401 - the fixture, by name

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--data", "digits", "--train-epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache_env(cache, monkeypatch):
    monkeypatch.setenv("SPARSEHW_CACHE", str(cache))


def run(out, *argv):
    assert main(["prune", argv[0], "--out", str(out), *argv[1:], *FAST]) == 0
    model, _ = load_model(out / "model.safetensors")
    return json.loads((out / f"{argv[0]}.json").read_text()), model


@pytest.mark.parametrize("name,layer", [("resnet", "layers.1.0.conv1"), ("mobilenet", "block1.pw")])
def test_every_channel_command_runs_on_the_coupled_models(tmp_path, name, layer):
    r, m = run(tmp_path / "c", "channel", "--model", name, "--ratio", "0.5", "--finetune-epochs", "0")
    assert r["removal"]["after"]["params"] < r["removal"]["before"]["params"]
    r, m = run(tmp_path / "s", "slim", "--model", name, "--ratio", "0.3", "--finetune-epochs", "0")
    assert r["removal"]["changed"] is True
    r, m = run(tmp_path / "n", "netadapt", "--model", name, "--target", "0.9", "--step", "0.1", "--layers", layer,
               "--short-epochs", "0", "--finetune-epochs", "0")
    assert r["netadapt"]["resource"] <= 0.9
    r, m = run(tmp_path / "a", "amc", "--model", name, "--target", "0.7", "--episodes", "2", "--warmup", "1",
               "--finetune-epochs", "0")
    assert r["amc"]["macs"] <= 0.7


def test_sensitivity_re_estimates_batchnorm_when_asked(tmp_path):
    scans = {}
    for bn in ("0", "100"):
        out = tmp_path / bn
        assert main(["prune", "sensitivity", "--out", str(out), "--model", "resnet", "--granularity", "channel",
                     "--layers", "conv1", "--ratios", "0.5", "--bn-samples", bn, *FAST]) == 0
        scans[bn] = json.loads((out / "sensitivity.json").read_text())["scan"]
    assert scans["0"]["bn_samples"] == 0 and scans["100"]["bn_samples"] == 100
    assert scans["0"]["base_acc"] == scans["100"]["base_acc"]
    assert scans["0"]["accuracy"]["conv1"] != scans["100"]["accuracy"]["conv1"]
    assert main(["prune", "sensitivity", "--out", str(tmp_path / "bad"), "--model", "resnet", "--bn-samples", "-1",
                 *FAST]) == 2
