"""Searches on an executor (sw/prune/parallel.py): a fixed seed gives the same NetAdapt trace and
random search in this process, in a local process pool and on a local Ray instance."""

import json

import pytest
import torch

from sw.cli import main
from sw.prune import parallel
from sw.prune.amc import amc, random_search
from sw.prune.netadapt import netadapt
from verif.tests.prune_common import CFG, digits, one_thread, trained_cnn  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--data", "digits", "--train-epochs", "2", "--no-progress"]
NETADAPT = ["netadapt", "--target", "0.7", "--step", "0.15", "--short-epochs", "0", "--finetune-epochs", "0", *FAST]


def _square(x):
    return x * x


def _offset(base, x):
    return base + x


def _searches(ex, with_amc=True):
    """A NetAdapt search (its trace, result and model) and a random search and AMC's warm-up on the
    tiny CNN, every independent task run by ``ex`` (AMC's warm-up goes through the same episode
    batches as random search; ``with_amc=False`` leaves it out where each task is expensive)."""
    d, m = digits(), trained_cnn()
    small, res = netadapt(m, d, CFG, target=0.6, step=0.2, short_epochs=1, final_epochs=1, progress=False,
                          executor=ex)
    kw = {"target": 0.5, "final_epochs": 0, "progress": False, "eval_samples": 60, "seed": 5, "executor": ex}
    _, rand = random_search(m, d, CFG, episodes=6, **kw)
    agent = amc(m, d, CFG, episodes=5, warmup=3, batch=4, **kw)[1].to_dict() if with_amc else None
    return res.to_dict(), [t.clone() for t in small.state_dict().values()], rand.to_dict(), agent


@pytest.fixture(scope="module")
def reference():
    """The searches in this process, one after another."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _searches(parallel.sequential())
    finally:
        torch.set_num_threads(previous)


def _same(a, b):
    res_a, model_a, rand_a, amc_a = a
    res_b, model_b, rand_b, amc_b = b
    assert res_a == res_b and len(res_a["trace"]) >= 2
    assert all(torch.equal(x, y) for x, y in zip(model_a, model_b, strict=True))
    assert rand_a == rand_b
    if amc_a is not None and amc_b is not None:
        assert amc_a == amc_b
        assert amc_a["episodes"][:3] == rand_a["episodes"][:3]      # AMC's warm-up is random search, in order


def test_a_local_process_pool_keeps_the_order_and_gives_the_sequential_results(reference):
    with parallel.executor(workers=2) as ex:
        assert ex.mode == "pool"
        seen = []
        assert ex.map(_square, range(7), done=lambda i, r: seen.append(i)) == [i * i for i in range(7)]
        assert sorted(seen) == list(range(7))
        assert ex.map(_offset, [1, 2, 3], shared=10) == [11, 12, 13]       # the pool is reused
        _same(reference, _searches(ex))
    assert parallel.sequential().map(_offset, [1, 2], shared=5) == [6, 7]
    assert parallel.executor().mode == "local" and parallel.executor(workers=3).map(_square, []) == []
    with pytest.raises(ValueError, match="workers"):
        parallel.executor(workers=0)


def test_the_command_line_checks_the_options_before_any_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "out")
    assert main(["prune", *NETADAPT, "--out", out, "--workers", "0"]) == 2
    assert "sparsehw prune netadapt: error: --workers" in capsys.readouterr().err
    assert main(["prune", "amc", "--out", out, "--target", "0.5", "--ray", "--workers", "2", *FAST]) == 2
    assert "--workers sizes the local pool and does not apply with --ray" in capsys.readouterr().err
    if parallel.ray_available():        # an address nobody answers at fails at once, not after Ray's retries
        assert main(["prune", *NETADAPT, "--out", out, "--ray-address", "127.0.0.1:1"]) == 2
        assert "--ray-address 127.0.0.1:1: cannot start or join Ray: no Ray cluster answers" in capsys.readouterr().err
    monkeypatch.setattr(parallel, "ray_available", lambda: False)
    assert main(["prune", *NETADAPT, "--out", out, "--ray-address", "head:6379"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsehw prune netadapt: error: --ray-address needs Ray, which is not installed: pip")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()    # nothing trained or written


def test_a_local_ray_instance_gives_the_sequential_results(reference, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is not installed (make test installs it: constraints.txt)")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)   # never a cluster found here
    try:
        with parallel.executor(ray=True) as ex:        # joins the instance this process started
            assert ex.mode == "ray"
            assert ex.map(_offset, range(4), shared=1) == [1, 2, 3, 4]
            _same(reference, _searches(ex, with_amc=False))       # Ray's per-task cost is seconds here
        assert ray.is_initialized()                    # not shut down: the executor did not start it
        monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "cache"))
        traces = []
        for where in ([], ["--ray"]):                  # the command line joins it too, with the same result
            out = tmp_path / f"out{len(traces)}"
            assert main(["prune", *NETADAPT, "--out", str(out), *where]) == 0
            traces.append(json.loads((out / "netadapt.json").read_text())["netadapt"])
        assert traces[0] == traces[1] and len(traces[0]["trace"]) >= 2
    finally:
        ray.shutdown()
