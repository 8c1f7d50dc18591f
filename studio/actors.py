"""Many independent items (video files, teacher pairs) on Ray actors: one dispatcher for every batch job.

    with ray_session(address=None, num_cpus=4):                  # started here, shut down on leaving
        pool = start_actors(Worker, (cfg,), n=2, cpus=1.0)       # Worker(cfg) in each; its ready() is checked
        for item, value, why in run_on_actors(items, pool, lambda actor, item: actor.run.remote(item)):
            ...                                                   # in the order items finish; why: one line

An item goes to whichever actor is free next, so short and long items balance out. An actor that raises is kept
for the next item; an actor whose process dies gets no more, and its item comes back with the reason. Ray is
imported only inside these functions: importing this module (or anything that imports it) never loads Ray.
"""
from __future__ import annotations

import logging
import math
import os
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional, Sequence


class RayUnavailable(RuntimeError):
    """Ray is not installed, the cluster cannot be joined, or the actors cannot start (one line)."""


@contextmanager
def ray_session(address: Optional[str] = None, num_cpus: Optional[int] = None):
    """Ray for the block: joined at `address`, else a new local instance with `num_cpus` cores (all by default),
    even when `ray start` left one or RAY_ADDRESS names one. Shut down on leaving when started here, also when the
    block is left early (a generator closed by its caller). Where Ray is already running, that one is used."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"this needs Ray ({exc}); pip install ray (requirements.txt pins it)") from None
    started = not ray.is_initialized()
    if started:
        if address:
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
                # e.g. a cluster with token authentication: RAY_AUTH_MODE=token and its token (Ray's docs)
                raise RayUnavailable(f"could not join the Ray cluster at {address} ({exc})".replace("\n", " ")) \
                    from None
        else:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _share(total: float, n: int) -> float:
    """`total` resources split over `n` actors: whole units when there are enough, else a fraction (which
    Ray schedules several to a unit)."""
    if n <= total:
        return float(int(total // n))
    return math.floor(total / n * 10_000) / 10_000


def plan_workers(workers: Optional[int], gpus: float, cpus: float, items: int,
                 cores_per_worker: int = 1) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor) for a cluster with `gpus` GPUs and `cpus` CPUs.

    Default: one actor per GPU, else one per `cores_per_worker` cores; never more actors than items (each builds
    its whole model). An actor uses one GPU at most; more actors than GPUs share them."""
    gpus, cpus = int(gpus), max(1, int(cpus))
    if workers is None:
        workers = gpus if gpus else max(1, cpus // cores_per_worker)
    workers = max(1, min(workers, items))
    return workers, _share(cpus, workers), (min(1.0, _share(gpus, workers)) if gpus else 0.0)


def why(exc: BaseException) -> str:
    """One line for an error that came back from Ray: the actor's own exception, not Ray's traceback."""
    import ray.exceptions

    if isinstance(exc, ray.exceptions.RayTaskError) and getattr(exc, "cause", None) is not None:
        cause = exc.cause
        return f"{type(cause).__name__}: {cause}"
    if isinstance(exc, ray.exceptions.RayActorError):
        return "the worker process died (out of memory or crashed); the other items go on"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def start_actors(cls: type, args: tuple, n: int, cpus: float = 1.0, gpus: float = 0.0) -> list:
    """`n` actors `cls(*args)`, each claiming `cpus` CPUs and `gpus` GPUs. Where `cls` has `ready()` (None, or why
    it cannot work), every actor is asked and the first problem raises RayUnavailable."""
    import ray

    actor = ray.remote(num_cpus=cpus, num_gpus=gpus)(cls)
    pool = [actor.remote(*args) for _ in range(n)]
    if hasattr(cls, "ready"):
        try:
            problems = [p for p in ray.get([a.ready.remote() for a in pool]) if p]
        except ray.exceptions.RayError as exc:
            problems = [why(exc)]
        if problems:
            raise RayUnavailable(str(problems[0]).replace("\n", " "))
    return pool


def run_on_actors(items: Iterable, pool: Sequence, submit: Callable) -> Iterator[tuple[object, object, Optional[str]]]:
    """(item, value, None) for each item done, (item, None, why) for one that failed, in the order they finish.
    `submit(actor, item)` starts an item on an idle actor and returns its ObjectRef."""
    import ray

    todo, idle, running = list(items), list(pool), {}
    while todo or running:
        while todo and idle:
            actor, item = idle.pop(0), todo.pop(0)
            running[submit(actor, item)] = (actor, item)
        if not running:  # every actor died: nothing left to run the rest on
            for item in todo:
                yield item, None, "no worker left to run it (they died)"
            return
        (ref,), _ = ray.wait(list(running), num_returns=1)
        actor, item = running.pop(ref)
        try:
            value = ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the process is gone: it gets no more items
            yield item, None, why(exc)
            continue
        except ray.exceptions.RayError as exc:  # the actor raised: it is still there for the next item
            idle.append(actor)
            yield item, None, why(exc)
            continue
        idle.append(actor)
        yield item, value, None
