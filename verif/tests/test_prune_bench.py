"""The pruning benchmark's schedule comparison job and argument checks, on digits with tiny epochs."""

import pytest

from sw.models import data as datasets
from sw.models.train import evaluate
from sw.prune import bench
from sw.prune.masks import get_mask

JOB = {"data": "digits", "seed": 0, "sparsity": 0.97, "steps": 2, "epochs_per_step": 2, "lr_scale": 0.1,
       "keep": True}


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
    model = out.pop("model")
    d = datasets.load("digits")
    assert evaluate(model, d.x_test, d.y_test) == out["iterative"]["test"]
    kept = sum(int(get_mask(m).sum()) for m in (model.fc1, model.fc2, model.fc3))
    total = sum(m.weight.numel() for m in (model.fc1, model.fc2, model.fc3))
    assert 1 - kept / total == pytest.approx(out["sparsity"], abs=1e-9)
    # seeded and single-threaded: a second run (scan included) repeats every number
    bench._scans.clear()
    again = bench._schedule_job({**JOB, "keep": False})
    assert again == out


def test_bench_rejects_bad_arguments_and_keeps_earlier_results(tmp_path, capsys):
    for argv in (["--steps", "3", "--epochs-per-step", "4"], ["--steps", "1"], ["--seeds", "0"]):
        with pytest.raises(SystemExit) as e:
            bench.main(["--out", str(tmp_path), *argv])
        assert e.value.code == 2
    assert "multiple" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path)])
    assert "--force" in capsys.readouterr().err and (tmp_path / "results.json").read_text() == "{}"
