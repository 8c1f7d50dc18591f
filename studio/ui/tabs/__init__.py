"""Studio tabs: one module each, with TITLE, render(ctx) and listen(ctx, ui). Shared job helpers below."""
from __future__ import annotations

import time


def ensure_idle(ctx, key: str) -> None:
    """Refuse a second background job of the same kind while one runs."""
    import gradio as gr

    running = ctx.jobs.get(key)
    if running is not None and running.state().status == "running":
        raise gr.Error("This is already running; cancel it or wait.")


def follow(job, progress, every: float = 1.0):
    """Yield a status line for a background job until it ends, driving the progress bar."""
    while True:
        s = job.state()
        if s.total:
            progress(s.step / s.total, desc=s.message)
        loss = f" · loss {s.loss:.4f}" if s.loss is not None else ""
        yield f"**{s.status}** · {s.message}{loss}", s
        if s.status != "running":
            return
        time.sleep(every)


def cancel_job(ctx, key: str, message: str) -> str:
    job = ctx.jobs.get(key)
    if job is None or job.state().status != "running":
        return "Nothing is running."
    job.cancel()
    return message
