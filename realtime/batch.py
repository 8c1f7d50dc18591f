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

The Ray session, the actors and the dispatch are studio.actors' (the pairs of training.make_pairs use the same);
nothing here imports Ray at module level: `import realtime.video` and the local mode never load it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from studio.actors import RayUnavailable, plan_workers, ray_session, run_on_actors, start_actors
from studio.io import error_line

# Cores per actor when there is no GPU. On the 2-core CPU machine (docs/PERFORMANCE.md, "Video folders (Ray)"),
# 4 clips x 60 frames took 35 s with 2 actors of 1 core and 38 s with 1 actor of 2 cores: a file's pipeline
# does not keep two cores busy on its own.
CPU_CORES_PER_WORKER = 1


def convert_on_ray(jobs: Sequence[tuple[Path, Path]], worker: type, worker_args: tuple, args: argparse.Namespace,
                   report_line: Callable) -> int:
    """Convert `jobs` (input, output) on Ray actors of class `worker`, each made as
    `worker(*worker_args, cwd, threads)` (it has `ready()`: None or why it cannot work, and `convert(src, dst,
    max_frames)`: (report, None) or (None, why)); print `report_line(src, dst, report, as_json)` per file done as
    the local mode does; return the exit status. `args`: ray_address, workers, frames, json, no_progress."""
    from tqdm import tqdm

    try:
        with ray_session(args.ray_address) as ray:
            resources = ray.cluster_resources()
            workers, cpus, gpus = plan_workers(args.workers, resources.get("GPU", 0), resources.get("CPU", 1),
                                               len(jobs), CPU_CORES_PER_WORKER)
            pool = start_actors(worker, (*worker_args, os.getcwd(), max(1, int(cpus))), workers, cpus, gpus)
            failed = 0
            with tqdm(total=len(jobs), unit="file", desc="videos", file=sys.stderr, disable=args.no_progress) as bar:
                done = run_on_actors(jobs, pool, lambda w, job: w.convert.remote(str(job[0]), str(job[1]),
                                                                                 args.frames))
                for (src, dst), result, why in done:
                    report, why = result if why is None else (None, why)  # convert gives (report, why) itself
                    if report is None:
                        failed += 1
                        bar.write(error_line(src, why), file=sys.stderr)
                        sys.stderr.flush()
                    else:
                        bar.write(report_line(src, dst, report, args.json), file=sys.stdout)
                        sys.stdout.flush()
                    bar.update(1)
    except RayUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if failed else 0
