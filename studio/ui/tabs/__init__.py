"""Studio tabs: one module each, with TITLE, render(ctx) and listen(ctx, ui). Shared helpers below: a handler's
inputs read off its signature, and background-job helpers."""
from __future__ import annotations

import dataclasses
import inspect
import time

# Handler parameters that gradio fills itself (a gr.Progress or gr.Request default or annotation), not components.
GRADIO_FILLED = ("progress", "request")


def inputs_for(handler, ui) -> list:
    """The components `handler` reads, in the order of its parameters. Each parameter is named after a field of
    the tab's UI dataclass `ui`, or a key of one of its dict fields (the sliders by factor name), so a handler's
    parameters, its inputs and its API parameter names cannot drift apart."""
    by_name: dict = {}
    for f in dataclasses.fields(ui):
        value = getattr(ui, f.name)
        for name, component in (value.items() if isinstance(value, dict) else [(f.name, value)]):
            if name in by_name:
                raise TypeError(f"{type(ui).__name__}: two components are named {name!r}")
            by_name[name] = component
    names = [n for n in inspect.signature(handler).parameters if n not in GRADIO_FILLED]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise TypeError(f"{handler.__name__}: no component of {type(ui).__name__} is named {', '.join(missing)}")
    return [by_name[n] for n in names]


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
