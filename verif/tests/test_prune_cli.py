"""`sparsehw prune …` through the top-level command line, on digits with tiny epochs."""

import argparse
import json

import pytest

from sw.cli import main
from sw.models.io import load_model
from sw.prune import cli
from sw.prune.masks import get_mask

FAST = ["--data", "digits", "--train-epochs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache_env(cache, monkeypatch):
    monkeypatch.setenv("SPARSEHW_CACHE", str(cache))


def run(*argv):
    return main(["prune", *argv])


def result(out, name):
    return json.loads((out / f"{name}.json").read_text())


def test_parser_lists_every_subcommand(capsys):
    parser = argparse.ArgumentParser(prog="sparsehw")
    cli.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["prune", "--help"])
    text = capsys.readouterr().out
    for c in ("sensitivity", "magnitude", "channel", "nm", "slim", "iterative", "netadapt", "amc", "share"):
        assert c in text


def test_sensitivity(tmp_path, capsys):
    out = tmp_path / "s"
    assert run("sensitivity", "--out", str(out), "--ratios", "0.5,0.9", "--target", "0.6", *FAST) == 0
    r = result(out, "sensitivity")
    assert r["scan"]["ratios"] == [0.5, 0.9] and set(r["scan"]["accuracy"]) == {"fc1", "fc2", "fc3"}
    assert set(r["ratios_for_target"]) == {"fc1", "fc2", "fc3"}
    assert (out / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert "| fc1 |" in capsys.readouterr().out


def test_magnitude_saves_a_model_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "m"
    args = ["magnitude", "--out", str(out), "--ratios", "fc1=0.9,fc2=0.8", "--finetune-epochs", "1", *FAST]
    assert run(*args) == 0
    r = result(out, "magnitude")
    layers = {x["name"]: x for x in r["prune"]["after"]["layers"]}
    assert layers["fc1"]["masked"] == round(0.9 * 300 * 64) and layers["fc3"]["masked"] == 0
    model, meta = load_model(out / "model.safetensors")
    assert int((get_mask(model.fc1) == 0).sum()) == round(0.9 * 300 * 64)
    text = capsys.readouterr().out
    assert "masked sparsity" in text and "real savings" in text
    before = (out / "model.safetensors").read_bytes()
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsehw prune magnitude: error: --out") and "refusing to overwrite" in err
    assert "pass --force" in err
    assert (out / "model.safetensors").read_bytes() == before
    assert run(*args, "--force") == 0


def test_channel_removes_and_reports_real_savings(tmp_path):
    out = tmp_path / "c"
    assert run("channel", "--out", str(out), "--ratio", "0.5", "--layers", "conv1,conv2",
               "--finetune-epochs", "1", *FAST) == 0
    r = result(out, "channel")
    assert r["removal"]["after"]["macs"] < 0.5 * r["removal"]["before"]["macs"]
    assert (out / "channel.png").read_bytes()[:4] == b"\x89PNG"
    model, _ = load_model(out / "model.safetensors")
    assert model.conv1.out_channels == 8 and model.conv2.in_channels == 8 and model.conv2.out_channels == 16


def test_netadapt_meets_the_mac_budget_and_saves_the_smaller_model(tmp_path, capsys):
    out = tmp_path / "na"
    assert run("netadapt", "--out", str(out), "--target", "0.6", "--step", "0.2", "--short-epochs", "0",
               "--finetune-epochs", "1", *FAST) == 0
    r = result(out, "netadapt")
    assert r["resource"]["kind"] == "macs" and r["resource"]["after"] <= 0.6 * r["resource"]["before"]
    assert len(r["netadapt"]["trace"]) >= 2 and r["netadapt"]["resource"] <= 0.6
    model, _ = load_model(out / "model.safetensors")
    assert {"conv1": model.conv1.out_channels, "conv2": model.conv2.out_channels,
            "fc1": model.fc1.out_features, "fc2": model.fc2.out_features} == r["netadapt"]["channels"]
    assert (out / "netadapt.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 1 |" in capsys.readouterr().out
    assert run("netadapt", "--out", str(tmp_path / "bad"), "--target", "0.6", "--step", "0.5", *FAST) == 2
    assert "--step 0.5 is outside (0, 0.4]" in capsys.readouterr().err


def test_netadapt_on_eie_cycles(tmp_path, capsys):
    out = tmp_path / "cy"
    assert run("netadapt", "--out", str(out), "--model", "lenet300", "--resource", "eie-cycles", "--n-pe", "8",
               "--samples", "4", "--target", "0.8", "--step", "0.2", "--short-epochs", "0",
               "--finetune-epochs", "0", *FAST) == 0
    r = result(out, "netadapt")
    assert r["resource"]["kind"] == "eie-cycles" and r["resource"]["after"] <= 0.8 * r["resource"]["before"]
    assert run("netadapt", "--out", str(tmp_path / "cnn"), "--resource", "eie-cycles", "--target", "0.8",
               *FAST) == 2
    assert "Linear" in capsys.readouterr().err
    assert run("netadapt", "--out", str(tmp_path / "s"), "--model", "lenet300", "--resource", "eie-cycles",
               "--samples", "0", "--target", "0.8", *FAST) == 2
    assert "--samples" in capsys.readouterr().err


def test_amc_meets_the_budget_and_saves_the_smaller_model(tmp_path, capsys):
    out = tmp_path / "amc"
    assert run("amc", "--out", str(out), "--target", "0.5", "--episodes", "12", "--warmup", "4",
               "--finetune-epochs", "1", *FAST) == 0
    r = result(out, "amc")
    assert r["amc"]["macs"] <= 0.5 and len(r["amc"]["episodes"]) == 12
    model, _ = load_model(out / "model.safetensors")
    assert model.conv1.out_channels == r["amc"]["channels"]["conv1"]
    assert (out / "amc.png").read_bytes()[:4] == b"\x89PNG" and "best of 12 episodes" in capsys.readouterr().out
    assert run("amc", "--out", str(tmp_path / "bad"), "--target", "0.01", *FAST) == 2
    assert "out of reach" in capsys.readouterr().err


def test_amc_random_search_is_the_warmup_of_the_agent(tmp_path):
    """``--search random``: the same environment, every action random; with the same seed its
    episodes are the DDPG agent's warm-up episodes (whatever --warmup says about the agent)."""
    common = ("--target", "0.5", "--episodes", "6", "--finetune-epochs", "0", "--seed", "3", *FAST)
    assert run("amc", "--out", str(tmp_path / "r"), "--search", "random", *common) == 0
    assert run("amc", "--out", str(tmp_path / "d"), "--warmup", "5", *common) == 0
    r, d = result(tmp_path / "r", "amc")["amc"], result(tmp_path / "d", "amc")["amc"]
    assert r["method"] == "random" and d["method"] == "amc"
    assert [e["ratios"] for e in r["episodes"][:5]] == [e["ratios"] for e in d["episodes"][:5]]
    assert r["episodes"][5]["ratios"] != d["episodes"][5]["ratios"]
    assert r["macs"] <= 0.5
    assert run("amc", "--out", str(tmp_path / "r2"), "--search", "random", "--episodes", "3", "--target", "0.5",
               "--finetune-epochs", "0", *FAST) == 0      # the agent's default --warmup 100 does not apply


def test_slim_iterative_and_share(tmp_path):
    out = tmp_path / "x"
    assert run("slim", "--out", str(out / "slim"), "--ratio", "0.4", "--finetune-epochs", "1", *FAST) == 0
    assert result(out / "slim", "slim")["removal"]["changed"] is True
    assert run("iterative", "--out", str(out / "it"), "--ratio", "0.8", "--steps", "2", "--epochs-per-step",
               "1",
               *FAST) == 0
    r = result(out / "it", "iterative")
    assert r["iterative"]["sparsity"] == pytest.approx(0.8, abs=1e-3) == r["one_shot"]["sparsity"]
    assert r["one_shot_equal_epochs"]["epochs"] == r["iterative"]["epochs"] == 2 == 2 * r["one_shot"]["epochs"]
    assert (out / "it" / "iterative.png").exists()
    assert run("share", "--out", str(out / "sh"), "--load", str(out / "it" / "model.safetensors"),
               "--finetune-epochs", "1", *FAST) == 0
    r = result(out / "sh", "share")
    assert abs(r["accuracy"]["integer"] - r["accuracy"]["centroid_finetuned"]) <= 1.0
    assert r["storage"]["ratio"] > 4 and (out / "sh" / "export.npz").exists()


def test_bad_input_is_reported_by_name(tmp_path, capsys):
    out = str(tmp_path / "bad")
    assert run("magnitude", "--out", out, "--ratio", "1.5", *FAST) == 2
    assert "[0, 1)" in capsys.readouterr().err
    assert run("magnitude", "--out", out, "--ratios", "fc9=0.5", *FAST) == 2
    assert "unknown layer(s) 'fc9'" in capsys.readouterr().err
    assert run("magnitude", "--out", out, "--ratios", "fc1:0.5", *FAST) == 2
    assert "layer=ratio" in capsys.readouterr().err
    assert run("nm", "--out", out, "--n", "2", "--m", "7", *FAST) == 2
    assert "not a multiple of m=7" in capsys.readouterr().err
    assert run("slim", "--out", out, "--model", "lenet300", "--ratio", "0.5", *FAST) == 2
    assert "BatchNorm" in capsys.readouterr().err
    assert run("channel", "--out", out, "--model", "cnn", "--layers", "fc3", "--ratio", "0.5", *FAST) == 2
    assert "model output" in capsys.readouterr().err
    assert run("share", "--out", out, "--load", str(tmp_path / "none.safetensors"), *FAST) == 2
    assert "--load" in (err := capsys.readouterr().err) and "none.safetensors: no such file" in err


def test_nm_prunes_every_group(tmp_path):
    out = tmp_path / "nm"
    assert run("nm", "--out", str(out), "--finetune-epochs", "1", *FAST) == 0
    model, _ = load_model(out / "model.safetensors")
    for layer in (model.fc1, model.fc2, model.fc3):
        w = layer.weight.detach()
        assert ((w.reshape(w.shape[0], -1, 4) != 0).sum(-1) <= 2).all()
    assert result(out, "nm")["prune"]["after"]["masked_sparsity"] == 0.5


def test_share_refuses_what_eie_cannot_run(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert run("share", "--out", out, "--model", "cnn", *FAST) == 2
    assert "chains of Linear and ReLU" in capsys.readouterr().err
    assert run("share", "--out", out, "--bits", "5", *FAST) == 2
    assert "--bits 5 is out of range 1..4" in capsys.readouterr().err
