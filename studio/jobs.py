"""Background work with progress, cancel and a result: what the studio's long tasks (LoRA training, distillation,
video conversion) run in.

    job = Job(work, total=400, name="lora-job").start()   # work(report, should_stop, log) -> (value, message)
    job.state()     # JobState(status, step, total, loss, message, result)
    job.cancel()    # `should_stop()` turns true; the work stops at its next check
    job.wait(); job.value                                 # what `work` returned (a path, a report, ...)

`work` raises Cancelled when it stopped part way (its message is shown); ValueError, OSError and a missing model
end the job as failed with their message; anything else fails it with the exception's name.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from .stylize.lora import SDModelMissing


class Cancelled(Exception):
    """The work was stopped before it finished; the message says where and how to continue."""


@dataclass(frozen=True)
class JobState:
    status: str = "pending"  # pending | running | done | failed | cancelled
    step: int = 0
    total: int = 0
    loss: Optional[float] = None
    message: str = ""
    result: Optional[str] = None  # the result's path, when the work returned one


class Job:
    """A background job: `work(report, should_stop, log)` runs in a thread and returns (value, message)."""

    def __init__(self, work: Callable, total: int, name: str = "job", subject: Optional[str] = None):
        self._work = work
        self.subject = subject  # what it works on (a character's name), for a page that shows the job again
        self._state = JobState(total=total)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.value: Any = None  # what the work returned, once it is done

    def _set(self, **kw) -> None:
        with self._lock:
            self._state = replace(self._state, **kw)

    def state(self) -> JobState:
        with self._lock:
            return self._state

    def start(self) -> "Job":
        self._set(status="running", message="starting")
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._stop.set()

    def wait(self, timeout: Optional[float] = None) -> JobState:
        self._thread.join(timeout)
        return self.state()

    def report(self, step: int, total: int, info: dict, stage: str = "") -> None:
        self._set(step=step, total=total, loss=info.get("loss"), message=f"{stage} {step}/{total}".strip())

    def _run(self) -> None:
        try:
            value, message = self._work(self.report, self._stop.is_set, lambda m: self._set(message=m))
            if self._stop.is_set():
                self._set(status="cancelled", message="stopped; start again to continue where it stopped")
            else:
                self.value = value
                path = str(value) if isinstance(value, (str, os.PathLike)) else None
                self._set(status="done", result=path, message=message)
        except Cancelled as exc:
            self._set(status="cancelled", message=str(exc))
        except (SDModelMissing, ValueError, OSError) as exc:
            self._set(status="failed", message=str(exc))
        except Exception as exc:  # noqa: BLE001 - a background job must report, not vanish
            self._set(status="failed", message=f"{type(exc).__name__}: {exc}")


class Busy(ValueError):
    """A job could not start: this session runs one of that kind, or the server runs as many as it allows."""


class SessionJobs:
    """The studio's background jobs, each owned by the session (browser page, API client) that started it. A
    session sees and cancels only its own; one job of a kind per session; and at most `limits[kind]` jobs of a kind
    run at once over all sessions (training holds gigabytes), refused with a one-line Busy, not queued.

        jobs = SessionJobs({"lora": 1, "video": 2})
        job = jobs.start(session, "video", lambda: Job(work, total).start())
        jobs.cancel(session, "video")   # False when this session runs no such job
    """

    def __init__(self, limits: Optional[dict] = None, default_limit: int = 1):
        self._limits, self._default = dict(limits or {}), default_limit
        self._jobs: dict[tuple[str, str], Job] = {}
        self._lock = threading.Lock()

    def _running(self, kind: str) -> int:
        return sum(1 for (_, k), j in self._jobs.items() if k == kind and j.state().status == "running")

    def running(self, kind: str) -> int:
        """How many `kind` jobs run now, over all sessions."""
        with self._lock:
            return self._running(kind)

    def start(self, session: str, kind: str, make: Callable[[], Job]) -> Job:
        """`make()` starts the job (raising ValueError for bad inputs); refused with Busy when this session already
        runs a `kind` job or the server runs its limit of them."""
        with self._lock:
            own = self._jobs.get((session, kind))
            if own is not None and own.state().status == "running":
                raise Busy("This is already running; cancel it or wait.")
            limit = self._limits.get(kind, self._default)
            if self._running(kind) >= limit:
                raise Busy(f"The studio is running {limit} {kind} job{'s' if limit > 1 else ''} for other users; "
                           "try again when one ends.")
            for key in [k for k, j in self._jobs.items() if j.state().status != "running" and k[1] == kind
                        and k[0] != session]:
                del self._jobs[key]  # ended jobs of other sessions: their results were already shown
            job = self._jobs[(session, kind)] = make()
            return job

    def get(self, session: str, kind: str) -> Optional[Job]:
        with self._lock:
            return self._jobs.get((session, kind))

    def cancel(self, session: str, kind: str) -> bool:
        job = self.get(session, kind)
        if job is None or job.state().status != "running":
            return False
        job.cancel()
        return True
