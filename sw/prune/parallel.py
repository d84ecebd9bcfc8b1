"""Where a search's independent tasks run: in this process, in local worker processes, or on Ray.

    with executor(workers=4) as ex:                  # a local pool of 4 spawned processes
        results = ex.map(fn, items, shared=context)  # [fn(context, item) for item in items], in order

:func:`executor` gives an :class:`Executor` whose :meth:`~Executor.map` returns the results in the
order of the items, whoever ran them: in this process (``workers=1``, the default, or a single
item), in a pool of ``workers`` local processes (``multiprocessing`` spawn: forking after torch
has run can deadlock), or as Ray tasks (``ray=True``: a local Ray instance, or the one this
process already joined; ``address="HEAD:6379"``: join that running cluster). Ray is imported only
then, so nothing else needs it installed.

Every task runs with one torch thread (each worker is one CPU, and float sums depend on the thread
count) and takes its seed from its arguments, so its result does not depend on where or in which
order it runs: a search with a fixed seed gives the same results in every mode. ``fn`` must be a
module-level function and ``shared``, the items and the results must pickle (the resource
callables of NetAdapt, the models, the data sets do).
"""

import multiprocessing
import os
import socket
from contextlib import contextmanager

import torch

RAY_HINT = "pip install -c constraints.txt ray (or the extra: pip install -e '.[ray]')"


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


@contextmanager
def single_thread():
    """Run the block with one torch thread, as every worker does; the caller's count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_address(address: str, timeout: float = 10.0) -> None:
    """``ConnectionError`` unless something accepts connections at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``; other forms, such as ``auto``, are left to Ray): ``ray.init`` would retry
    an unreachable head for minutes."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not (host and port.isdigit()):
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"no Ray cluster answers at {address}: {e}") from None


def _latest_cluster() -> str | None:
    """The address of the latest cluster ``ray start`` started on this machine, as Ray records it."""
    try:
        from ray._private.utils import read_ray_address
        return read_ray_address()
    except Exception:       # Ray's private helper moved: let ray.init look for itself
        return "unknown"


def _reachable(address: str | None) -> bool:
    if address == "unknown":
        return True
    try:
        check_address(address or "", timeout=3.0)
    except ConnectionError:
        return False
    return bool(address)


def _init_worker() -> None:
    torch.set_num_threads(1)


def _call(task):
    """One task in a worker process: ``(index, fn(shared, item))``."""
    i, fn, shared, has_shared, item = task
    with single_thread():
        return i, (fn(shared, item) if has_shared else fn(item))


def _ray_call(i, fn, shared, has_shared, item):
    """One Ray task; ``shared`` arrives as a top-level argument, so Ray resolves its reference."""
    return _call((i, fn, shared, has_shared, item))


class Executor:
    """Runs the independent tasks of a search (:func:`executor` makes one). A context manager:
    leaving it stops the local pool, and the Ray instance it started (not one it joined)."""

    def __init__(self, ray: bool = False, address: str | None = None, workers: int | None = None):
        if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.ray = bool(ray or address)
        self.address = address or None
        self.workers = 1 if workers is None else int(workers)
        self._pool = None
        self._ray = None            # the ray module once joined
        self._owns_ray = False
        self._remote = None
        if self.ray:
            self._join()

    # -- Ray
    def _join(self) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError(f"running on Ray needs Ray, which is not installed: {RAY_HINT}") from None
        if not ray.is_initialized():
            address = self.address
            if address:
                check_address(address)
            elif os.environ.get("RAY_ADDRESS"):
                check_address(os.environ["RAY_ADDRESS"])
            elif not _reachable(_latest_cluster()):
                address = "local"   # none started here, or a stale record of one that died: ray.init would hang
            # address None: the latest cluster started on this machine (which answers)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as e:
                if not (self.address and os.environ.get("RAY_AUTH_MODE") is None):
                    raise
                raise ConnectionError(f"{e} (Ray sends a cluster named by its address its token only with "
                                      "RAY_AUTH_MODE=token: README, Running a search on a cluster)") from e
            self._owns_ray = True
        self._ray = ray
        self._remote = ray.remote(num_cpus=1)(_ray_call)

    @property
    def mode(self) -> str:
        """``"ray"``, ``"pool"`` or ``"local"`` (this process)."""
        return "ray" if self.ray else "pool" if self.workers > 1 else "local"

    def map(self, fn, items, shared=None, done=None) -> list:
        """``[fn(shared, item) for item in items]`` (``fn(item)`` when ``shared`` is None), in the
        items' order. ``shared`` is not copied into every task: Ray keeps one copy in its object
        store; the pool sends it once per chunk of tasks. ``fn`` must not change it.
        ``done(i, result)`` is called as each task finishes (in any order; a progress bar's update)."""
        items = list(items)
        has = shared is not None
        results = [None] * len(items)

        def finish(i, r):
            results[i] = r
            if done is not None:
                done(i, r)

        if not items:
            return results
        if self.mode == "ray":
            ray = self._ray
            ref = ray.put(shared) if has else None
            pending = {self._remote.remote(i, fn, ref, has, item): i for i, item in enumerate(items)}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for r in ready:
                    pending.pop(r)
                    finish(*ray.get(r))
        elif self.mode == "pool" and len(items) > 1:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")      # fork after torch has run can deadlock
                self._pool = ctx.Pool(min(self.workers, len(items)), initializer=_init_worker)
            # a chunk of tasks pickles as one message, ``shared`` in it once
            chunk = max(1, len(items) // (4 * self.workers))
            tasks = [(i, fn, shared, has, item) for i, item in enumerate(items)]
            for i, r in self._pool.imap_unordered(_call, tasks, chunksize=chunk):
                finish(i, r)
        else:
            for i, item in enumerate(items):
                finish(*_call((i, fn, shared, has, item)))
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        if self._owns_ray and self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        where = f"ray at {self.address}" if self.address else "ray" if self.ray else f"{self.workers} worker(s)"
        return f"Executor({where})"


def executor(ray: bool = False, address: str | None = None, workers: int | None = None) -> Executor:
    """Where a search's independent tasks run: Ray when ``ray`` or ``address`` is given (joining
    the cluster at ``address``, else ``RAY_ADDRESS``, the latest cluster started on this machine,
    or a new local instance), else ``workers`` local processes (default 1: this process).
    ``ImportError`` naming the install when Ray is asked for and missing."""
    return Executor(ray=ray, address=address, workers=workers)


def sequential() -> Executor:
    """Every task in this process, one after another (the library functions' default)."""
    return Executor()
