"""Jobs too large for one machine, cut into blocks that run on a Dask distributed cluster.

Two jobs scale out this way, each with blocks of its own (:mod:`.model.blocks` for inference,
:mod:`.imagery.pieces` for imagery preparation); what they share is here: reaching a cluster (a
LocalCluster of N worker processes on this machine, GPU workers one GPU each, or an existing
scheduler), running the blocks a manifest does not yet list with progress, live throughput and
cancel, and the manifest itself.

Workers read their inputs from a path they all see (a shared drive, or a URL GDAL opens such as
``/vsicurl/`` of a cloud-optimised GeoTIFF); nothing but block descriptions and counters goes
through the scheduler. Each block's file lands beside the output (``OUT.blocks/``) with a
manifest of the finished ones: a rerun after the client, the scheduler or a worker died computes
only what is missing, and a worker killed mid-block is survived (Dask runs the block again).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .errors import RtsMapperError
from .progress import Feedback

LOCAL = "local"  # cluster "local" or "local:N": a LocalCluster of N workers on this machine
LOCAL_WORKERS = 2  # "local" alone
WORKERS_START_S = 900  # a local cluster's workers not up after this long are not coming
KILL_AT_BLOCK_ENV = "RTS_MAPPER_KILL_WORKER_AT_BLOCK"  # fault injection: "INDEX:MARKER" (tests)
THREADS_ENV = "RTS_MAPPER_THREADS"  # CPU threads a process's model may use (a local worker's share)


def process_threads() -> int:
    """The CPU threads this process's model may use: every core, or its share of them when it is
    one of a local cluster's N workers (N processes each using every core would fight over them)."""
    share = os.environ.get(THREADS_ENV, "")
    return int(share) if share.isdigit() and int(share) > 0 else max(1, os.cpu_count() or 1)


def gpu_count() -> int:
    """GPUs this machine lends its workers: those CUDA_VISIBLE_DEVICES names when it is set, else
    what PyTorch sees (0 without PyTorch: imagery preparation needs none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and not d.strip().startswith("-")])
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count())


def worker_gpus(workers: int, gpus: Sequence[str]) -> list[str | None]:
    """The GPU each of ``workers`` local workers sees (CUDA_VISIBLE_DEVICES), round robin over
    ``gpus``; None for every worker when there are none."""
    return [gpus[i % len(gpus)] if gpus else None for i in range(workers)]


def connect(cluster: str, gpus: int | None = None):
    """A Dask client: ``local[:N]`` starts N worker processes here (one block at a time each),
    anything else is a scheduler address (``tcp://host:8786``).

    A local cluster's N workers share the cores (each gets cores / N threads for its model), and
    on a machine with GPUs (``gpus``: how many to use, None = all it has) worker ``i`` sees GPU
    ``i mod gpus`` alone (its CUDA_VISIBLE_DEVICES), so N workers on N GPUs use one each. Workers
    of a real cluster are pinned where they are started (the user guide).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise RtsMapperError(
            "running on a cluster needs Dask: python3 -m pip install dask distributed (in the Python "
            "that runs RTS Mapper, and on every worker)"
        ) from exc
    if cluster == LOCAL or cluster.startswith(LOCAL + ":"):
        import multiprocessing

        import dask

        from .install import qgis_python

        try:
            workers = int(cluster.split(":", 1)[1]) if ":" in cluster else LOCAL_WORKERS
        except ValueError:
            workers = 0
        if workers < 1:
            raise RtsMapperError(f"a local cluster is local:N with N >= 1 workers, not {cluster!r}")
        # worker processes are started from an interpreter: in QGIS, sys.executable is QGIS itself
        multiprocessing.set_executable(qgis_python())
        # generous: a busy machine starts worker processes (each importing torch) slowly
        dask.config.set(
            {"distributed.comm.timeouts.connect": "120s", "distributed.comm.timeouts.tcp": "120s"}
        )
        count = gpu_count() if gpus is None else gpus
        visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        pinned = worker_gpus(workers, (visible or [str(i) for i in range(count)])[:count])

        threads = str(max(1, (os.cpu_count() or 1) // workers))

        class PinnedLocalCluster(LocalCluster):
            """A LocalCluster whose worker ``i`` gets its share of the cores and its own GPU
            (Nanny's per-worker environment)."""

            def new_worker_spec(self):
                spec = super().new_worker_spec()
                name, worker = next(iter(spec.items()))
                env = {THREADS_ENV: threads}
                gpu = pinned[int(name) % len(pinned)]
                if gpu is not None:
                    env["CUDA_VISIBLE_DEVICES"] = gpu
                options = {**worker.get("options", {})}
                options["env"] = {**options.get("env", {}), **env}
                return {name: {**worker, "options": options}}

        local = PinnedLocalCluster(
            n_workers=0, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        )
        try:
            local.scale(workers)
            client = Client(local)
            client.wait_for_workers(workers, timeout=WORKERS_START_S)
        except BaseException as exc:
            local.close()
            if isinstance(exc, TimeoutError):  # a hang, not a slow machine: minutes of nothing
                raise RtsMapperError(
                    f"the local cluster's {workers} worker processes did not start within "
                    f"{WORKERS_START_S // 60} minutes (is {qgis_python()} a Python with RTS Mapper's packages?)"
                ) from exc
            raise
        return client
    try:
        return Client(cluster, timeout="20s")
    except OSError as exc:
        raise RtsMapperError(f"no Dask scheduler answers at {cluster} ({exc})") from exc


@contextlib.contextmanager
def session(
    cluster: str, client=None, needed: bool = True, announce=None, gpus: int | None = None
) -> Iterator:
    """The client to run on: ``client`` when given, else one connected to ``cluster`` for the
    duration (a local cluster is shut down after), or None when nothing is ``needed`` (every
    block was finished before). ``announce`` gets the dashboard link once connected."""
    own = client is None and needed
    if own:
        client = connect(cluster, gpus)
    try:
        dashboard = getattr(client, "dashboard_link", None) if client is not None else None
        if dashboard and announce is not None and needed:
            announce(dashboard)
        yield client
    finally:
        if own:
            local = client.cluster
            client.close()
            if local is not None:
                local.close()


def file_key(path: str | os.PathLike) -> list:
    """A file as a manifest keys it (path, mtime, size); a URL GDAL opens is taken as named."""
    local = Path(path)
    if local.is_file():
        stat = local.stat()
        return [str(local.resolve()), stat.st_mtime_ns, stat.st_size]
    return [str(path)]


class Manifest:
    """The blocks finished so far, beside the outputs: a rerun after a crash computes only the
    rest, and only if nothing that shapes the output has changed (the key)."""

    def __init__(self, folder: Path, key: dict) -> None:
        self.path = folder / "manifest.json"
        self.key = json.loads(json.dumps(key))  # as it reads back from the file (lists, not tuples)
        self.done: dict[int, dict] = {}
        if self.path.is_file():
            try:
                stored = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError:
                stored = {}
            if stored.get("key") == self.key:
                self.done = {int(i): v for i, v in stored.get("blocks", {}).items()}

    def finished(self, index: int, file: Path) -> bool:
        return index in self.done and file.exists()

    def record(self, index: int, figures: dict) -> None:
        from .raster_io import atomic_output

        self.done[index] = figures
        with atomic_output(self.path) as partial:
            Path(partial).write_text(
                json.dumps({"key": self.key, "blocks": self.done}, indent=1), encoding="utf-8"
            )


def run_blocks(
    client,
    function: Callable,
    requests: Sequence,
    index_of: Callable[[object], int],
    manifest: Manifest,
    total: int,
    feedback: Feedback,
    km2_of: Callable[[dict], float],
    fraction: float = 0.9,
) -> None:
    """``function(request)`` for each request on the cluster, recording each finished block in
    the manifest as it comes back. Progress runs to ``fraction`` over the ``total`` blocks (those
    finished before count as done); the status line says blocks done and the throughput
    (``km2_of`` a block's figures). A failed block, a cancel or the client going down cancels the
    rest (what finished stays recorded)."""
    from distributed import as_completed

    futures = client.map(
        function, requests, pure=False, key=[f"rts-block-{index_of(r)}-{id(manifest)}" for r in requests]
    )
    by_key = {f.key: r for f, r in zip(futures, requests)}
    done, km2, started = total - len(requests), 0.0, time.perf_counter()
    try:
        for future in as_completed(futures):
            feedback.check()
            index = index_of(by_key[future.key])
            if future.status == "error":
                raise RtsMapperError(f"block {index} failed on the cluster: {future.exception()}")
            figures = future.result()
            manifest.record(index, figures)
            done, km2 = done + 1, km2 + km2_of(figures)
            minutes = (time.perf_counter() - started) / 60
            feedback.status(f"{done} of {total} blocks done, {km2 / minutes:.1f} km²/min on the cluster")
            feedback.step(fraction * done / total)
    except BaseException:  # cancelled, a block failed, or the client is going down: stop the rest
        client.cancel(futures)
        raise


def maybe_die(index: int) -> None:
    """Fault injection for the tests: the worker process dies on its first try of one block."""
    spec = os.environ.get(KILL_AT_BLOCK_ENV)
    if not spec:
        return
    at, marker = spec.split(":", 1)
    if int(at) == index and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
