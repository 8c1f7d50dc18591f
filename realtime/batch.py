"""Many video files at once: `python -m realtime.video FOLDER OUTDIR --ray [--workers N] [--ray-address ADDR]`.

The files go to Ray actors (realtime.video.VideoWorker, handed in by the video CLI: this module does not import
it). Each actor builds one stream, the same way the local mode does, then converts the files it is handed one
after another.
A file goes to whichever actor is free next, so short and long clips balance out. Default actors: one per GPU
when the Ray cluster has GPUs (`num_gpus=1` each; Ray gives each actor its own CUDA_VISIBLE_DEVICES), else one
per CPU_CORES_PER_WORKER cores of the cluster. Each actor claims its share of the CPUs and runs onnxruntime
and OpenCV on that many threads. Without `--ray-address`, Ray is started here for the run
(`ray.init(num_cpus=<cores>, ...)`, no dashboard, the actors' logs not forwarded) and shut down at the end;
with it, the run joins that cluster (the input and output paths must then be the same on every node).

Reporting is the local mode's: one line (or `--json` object) per file as it finishes, in the order they finish,
a tqdm bar over the files on stderr, `error: <file>: <why>` for a file that fails while the others go on, and
exit status 1 if any failed (2 when the stylizer cannot be built). A worker process that dies fails the file it
had; its remaining files go to the other workers.

Nothing here imports Ray at module level: `import realtime.video` and the local mode never load it.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

# Cores per actor when there is no GPU. On the 2-core CPU machine (docs/PERFORMANCE.md, "Video folders (Ray)"),
# 4 clips x 60 frames took 35 s with 2 actors of 1 core and 38 s with 1 actor of 2 cores: a file's pipeline
# does not keep two cores busy on its own.
CPU_CORES_PER_WORKER = 1

def error_line(src, why) -> str:
    """The one line printed for an input that could not be done."""
    return f"error: {src}: {why}".replace("\n", " ")


# ------------------------------------------------------------------------------------------------ planning
def _share(total: float, n: int) -> float:
    """`total` resources split over `n` actors: whole units when there are enough, else a fraction (which
    Ray schedules several to a unit)."""
    if n <= total:
        return float(int(total // n))
    return math.floor(total / n * 10_000) / 10_000


def plan_workers(workers: Optional[int], gpus: float, cpus: float, files: int) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor) for a Ray cluster with `gpus` GPUs and `cpus` CPUs.

    Default: one actor per GPU, else one per CPU_CORES_PER_WORKER cores; never more actors than files (each
    builds a whole stylizer). An actor uses one GPU at most; more actors than GPUs share them."""
    gpus, cpus = int(gpus), max(1, int(cpus))
    if workers is None:
        workers = gpus if gpus else max(1, cpus // CPU_CORES_PER_WORKER)
    workers = max(1, min(workers, files))
    return workers, _share(cpus, workers), (min(1.0, _share(gpus, workers)) if gpus else 0.0)


# --------------------------------------------------------------------------------------------- the driver
def _why(exc: BaseException) -> str:
    """One line for an error that came back from Ray: the actor's own exception, not Ray's traceback."""
    import ray.exceptions

    if isinstance(exc, ray.exceptions.RayTaskError) and getattr(exc, "cause", None) is not None:
        cause = exc.cause
        return f"{type(cause).__name__}: {cause}"
    if isinstance(exc, ray.exceptions.RayActorError):
        return "the worker process died (out of memory or crashed); the other files go on"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def convert_on_ray(jobs: Sequence[tuple[Path, Path]], worker: type, worker_args: tuple, args: argparse.Namespace,
                   report_line: Callable) -> int:
    """Convert `jobs` (input, output) on Ray actors of class `worker`, each made as
    `worker(*worker_args, cwd, threads)` (it has `ready()`: None or why it cannot work, and `convert(src, dst,
    max_frames)`: (report, None) or (None, why)); print `report_line(src, dst, report, as_json)` per file done as
    the local mode does; return the exit status. `args`: ray_address, workers, frames, json, no_progress."""
    try:
        import ray
    except ImportError as exc:
        print(f"error: --ray needs Ray ({exc}); pip install ray (requirements.txt pins it)", file=sys.stderr)
        return 2

    started = not ray.is_initialized()
    if started:
        if args.ray_address:
            try:
                ray.init(address=args.ray_address, log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
                # e.g. a cluster with token authentication: RAY_AUTH_MODE=token and its token (Ray's docs)
                print(f"error: --ray-address {args.ray_address}: could not join the cluster ({exc})"
                      .replace("\n", " "), file=sys.stderr)
                return 2
        else:
            # "local": a new instance for this run, even when `ray start` left one (or RAY_ADDRESS names one)
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
    try:
        resources = ray.cluster_resources()
        workers, cpus, gpus = plan_workers(args.workers, resources.get("GPU", 0), resources.get("CPU", 1),
                                           len(jobs))
        actor = ray.remote(num_cpus=cpus, num_gpus=gpus)(worker)
        pool = [actor.remote(*worker_args, os.getcwd(), max(1, int(cpus))) for _ in range(workers)]
        try:
            problems = [p for p in ray.get([w.ready.remote() for w in pool]) if p]
        except ray.exceptions.RayError as exc:
            problems = [_why(exc)]
        if problems:
            print(f"error: {problems[0]}".replace("\n", " "), file=sys.stderr)
            return 2
        return _dispatch(jobs, pool, args, report_line)
    finally:
        if started:
            ray.shutdown()


def _dispatch(jobs, pool: list, args: argparse.Namespace, report_line: Callable) -> int:
    import ray
    from tqdm import tqdm

    todo, idle, running, failed = list(jobs), list(pool), {}, 0
    bar = tqdm(total=len(jobs), unit="file", desc="videos", file=sys.stderr, disable=args.no_progress)

    def fail(src, why):
        nonlocal failed
        failed += 1
        bar.write(error_line(src, why), file=sys.stderr)
        sys.stderr.flush()

    try:
        while todo or running:
            while todo and idle:
                w = idle.pop(0)
                src, dst = todo.pop(0)
                running[w.convert.remote(str(src), str(dst), args.frames)] = (w, src, dst)
            if not running:  # every worker died: nothing left to run the rest on
                for src, _ in todo:
                    fail(src, "no worker left to convert it (they died)")
                break
            (ref,), _ = ray.wait(list(running), num_returns=1)
            w, src, dst = running.pop(ref)
            try:
                report, why = ray.get(ref)
                idle.append(w)
            except ray.exceptions.RayActorError as exc:  # the process is gone: it gets no more files
                report, why = None, _why(exc)
            except ray.exceptions.RayError as exc:  # the actor raised: it is still there for the next file
                report, why = None, _why(exc)
                idle.append(w)
            if report is None:
                fail(src, why)
            else:
                bar.write(report_line(src, dst, report, args.json), file=sys.stdout)
                sys.stdout.flush()
            bar.update(1)
    finally:
        bar.close()
    return 1 if failed else 0
