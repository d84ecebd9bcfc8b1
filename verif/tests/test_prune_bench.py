"""The pruning benchmark's schedule comparison job, a section run alone, and argument checks, on digits
with tiny epochs."""

import inspect
import json

import pytest

from sw.models import data as datasets
from sw.models.train import evaluate
from sw.prune import bench
from sw.prune.masks import get_mask
from verif.tests.prune_common import one_thread, trained_resnet  # noqa: F401

JOB = {"data": "digits", "seed": 0, "sparsity": 0.97, "steps": 2, "epochs_per_step": 2, "lr_scale": 0.1}


@pytest.fixture(autouse=True)
def _cache_env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path_factory.getbasetemp() / "bench-cache"))


def test_schedule_job_runs_every_protocol_at_the_same_sparsity():
    bench._scans.clear()
    out = bench._schedule_job(JOB)
    assert out["sparsity"] == pytest.approx(0.97, abs=1e-3)
    assert sum(out["ratios"].values()) > 0 and set(out["ratios"]) == {"fc1", "fc2", "fc3"}
    assert {k: out[k]["epochs"] for k in ("one_shot", "iterative", "one_shot_equal", "iterative_equal")} == \
        {"one_shot": 2, "iterative": 4, "one_shot_equal": 4, "iterative_equal": 2}
    assert [key for key, _ in bench.PROTOCOLS] == ["no_ft", "one_shot", "iterative", "one_shot_equal",
                                                    "iterative_equal"]
    # fine-tuning recovers what pruning alone lost
    assert out["one_shot_equal"]["val"] > out["no_ft"]["val"] and out["iterative"]["val"] > out["no_ft"]["val"]
    # the pipeline sections' start, built alone, is the job's iterative model
    model = bench.iterative_model("digits", 0.97, 2, 2, 0.1)
    d = datasets.load("digits")
    assert evaluate(model, d.x_test, d.y_test) == out["iterative"]["test"]
    kept = sum(int(get_mask(m).sum()) for m in (model.fc1, model.fc2, model.fc3))
    total = sum(m.weight.numel() for m in (model.fc1, model.fc2, model.fc3))
    assert 1 - kept / total == pytest.approx(out["sparsity"], abs=1e-9)
    # seeded and single-threaded: a second run (scan included) repeats every number
    bench._scans.clear()
    assert bench._schedule_job(JOB) == out


def test_one_section_rewrites_its_block_alone(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# B\n\n<!-- bench:prune-nm -->\nold\n<!-- /bench:prune-nm -->\n\n<!-- bench:prune-amc -->\n"
                  "kept\n<!-- /bench:prune-amc -->\n")
    assert bench.main(["prune-nm", "--data", "digits", "--finetune-epochs", "1", "--benchmarks", str(md),
                       "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    text = md.read_text()
    assert "old" not in text and "2:4 on every LeNet-300-100 layer (50%)" in text and "\nkept\n" in text
    assert json.loads((tmp_path / "out" / "prune-nm.json").read_text())["sparsity"] == pytest.approx(0.5)


def test_bench_rejects_bad_arguments(tmp_path, capsys, monkeypatch):
    for argv in (["--steps", "3", "--epochs-per-step", "4"], ["--steps", "1"], ["--seeds", "0"], ["prune-x"]):
        with pytest.raises(SystemExit) as e:
            bench.main(["--benchmarks", str(tmp_path / "B.md"), *argv])
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "multiple" in err and "unknown section(s) prune-x" in err
    if bench.ray_available():       # an address nobody answers at is refused before any section runs
        with pytest.raises(SystemExit):
            bench.main(["--benchmarks", str(tmp_path / "B.md"), "--ray-address", "127.0.0.1:1"])
        assert "--ray-address 127.0.0.1:1: no Ray cluster answers" in capsys.readouterr().err
    monkeypatch.setattr(bench, "ray_available", lambda: False)
    with pytest.raises(SystemExit):
        bench.main(["--benchmarks", str(tmp_path / "B.md"), "--ray"])
    assert "error: --ray needs Ray, which is not installed: pip install" in capsys.readouterr().err
    assert not (tmp_path / "B.md").exists()


def test_every_section_gets_the_inputs_its_function_takes(tmp_path, monkeypatch):
    called = []

    def stub(name):
        signature = inspect.signature(getattr(bench, name))

        def section(*args, **kwargs):
            signature.bind(*args, **kwargs)
            called.append(name)
            return {"section": name}, f"{name} ran"
        return section

    for name in ("lenet_baseline", "sensitivity", "schedules", "sharing", "nm", "regularisation", "channels",
                 "netadapt_cnn", "netadapt_eie", "amc_cnn", "amc_vs_random", "compare_methods"):
        monkeypatch.setattr(bench, name, stub(name))
    s = bench.Settings(data="digits", seeds=1, target=0.9, steps=2, epochs_per_step=2, out=tmp_path / "out",
                       plots=tmp_path / "docs", progress=False)
    bench.run(s, list(bench.SECTIONS), tmp_path / "B.md")
    assert len(called) == len(bench.SECTIONS) == 12
    assert json.loads((tmp_path / "out" / "prune-amc.json").read_text()) == {"section": "amc_cnn"}
    assert "<!-- bench:prune-channels -->" in (tmp_path / "B.md").read_text()


@pytest.mark.usefixtures("one_thread")
def test_amc_against_random_search_runs_and_reports_what_it_measured(tmp_path):
    d = datasets.load("digits")
    res, md = bench.amc_vs_random(d, trained_resnet(), bench.RESNET, tmp_path / "curves.png", budgets=(0.5,),
                                  seeds=(0, 1), episodes=4, warmup=2, eval_samples=60, bn_samples=100,
                                  progress=False)
    assert (tmp_path / "curves.png").stat().st_size > 0
    json.dumps(res)
    assert [(r["budget"], r["method"]) for r in res["rows"]] == [(0.5, "amc"), (0.5, "random")]
    for row in res["rows"]:
        assert [s["seed"] for s in row["seeds"]] == [0, 1]
        assert all(len(s["best_so_far"]) == 4 and s["best_macs"] <= 0.5 + 1e-9 for s in row["seeds"])
    for seed in (0, 1):     # the warm-up episodes are shared
        assert res["runs"][f"0.5/amc/{seed}"]["episodes"][:2] == res["runs"][f"0.5/random/{seed}"]["episodes"][:2]
    assert "4 episodes" in md and "60 validation samples" in md and "seeds 0, 1" in md and "AMC higher in" in md
    assert "re-estimated on 100 training samples" in md
    assert md.count("| 50%") == 2


@pytest.mark.usefixtures("one_thread")
def test_method_comparison_meets_every_budget_and_repeats_for_a_seed(tmp_path):
    d = datasets.load("digits")
    kw = dict(budgets=(0.5,), seeds=(3,), episodes=3, warmup=1, eval_samples=60, bn_samples=100,
              netadapt_step=0.25, short_epochs=0, finetune_epochs=1, lr_scale=0.1, progress=False)
    res, md = bench.compare_methods(d, {"ResNet": (trained_resnet(), bench.RESNET)}, tmp_path / "a.png", **kw)
    assert (tmp_path / "a.png").stat().st_size > 0
    json.dumps(res)
    methods = [key for key, _ in bench.COMPARE_METHODS]
    assert methods == ["uniform", "sensitivity", "amc", "netadapt", "random"]
    assert [(r["method"], r["seed"]) for r in res["runs"]] == [(m, 3) for m in methods]
    assert all(0 < r["macs"] <= 0.5 for r in res["runs"])
    assert all(r["search_epochs"] == 0 for r in res["runs"])
    table = md[:md.index(bench.TIMING)]
    for _, title in bench.COMPARE_METHODS:
        assert table.count(f"| ResNet | 50% | {title} |") == 1
    assert "Seeds 3:" in table and "3 episodes, the first 1 random" in table and "60 validation samples" in table
    assert "1 epoch of fine-tuning" in table
    assert "validation accuracy after re-estimating BatchNorm on the same 100 training samples" in table
    # seeded and single-threaded: a second run repeats the table and every number but the clock's
    res2, md2 = bench.compare_methods(d, {"ResNet": (trained_resnet(), bench.RESNET)}, tmp_path / "b.png", **kw)
    assert md2[:md2.index(bench.TIMING)] == table
    assert {k: v for k, v in res2.items() if k != "timing"} == {k: v for k, v in res.items() if k != "timing"}
