"""Studio tabs: one module each, with TITLE, render(ctx) and listen(ctx, ui). Shared helpers below: a handler's
inputs read off its signature, and background-job helpers."""
from __future__ import annotations

import dataclasses
import inspect
import re
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


def output_name(stem: str, character: str) -> str:
    """`<time>-<stem>-<character>.png` for `<data_dir>/outputs/`; milliseconds keep two runs in the same second
    apart."""
    now = time.time()
    stamp = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}{int(now * 1000) % 1000:03d}"
    return f"{stamp}-{stem}-{character}.png"


def refuse(message: str):
    """The gr.Error that answers a request the user can fix: shown in the page, not printed with a traceback in the
    server log (it is an answer, not a fault of the server)."""
    import gradio as gr

    return gr.Error(message, print_exception=False)


def known_character(cfg, name: str):
    """The character `name` from disk, or a one-line refusal listing the names (a picker takes typed names)."""
    from ...characters import load_character

    try:
        return load_character(name, cfg)
    except ValueError as exc:
        raise refuse(str(exc)) from None


def unusable_upload(exc: Exception):
    """A gr.Error for an upload studio.io.load_image refused: its reason, without the server's temporary path."""
    return refuse(f"Can't use this file: {str(exc).split(': ', 1)[-1]}")


OWNER_COOKIE = "toonlab_owner"  # set by owner.js: a random id per browser, so a reopened page finds its jobs
_OWNER = re.compile(r"[0-9a-f]{32}")


def session_of(request) -> str:
    """The page's (or API client's) session id: a new one on every page load."""
    return getattr(request, "session_hash", None) or "local"


def owner_of(request) -> str:
    """Who a background job belongs to: the browser (its owner cookie: a reloaded or reopened page follows its
    jobs again), else the session (an API client, a browser without the cookie). The cookie is 128 random bits made
    in the browser, as secret as a session cookie; anything else in it is ignored."""
    cookies = getattr(request, "cookies", None) or {}
    token = cookies.get(OWNER_COOKIE, "") if hasattr(cookies, "get") else ""
    return f"browser-{token}" if _OWNER.fullmatch(token or "") else session_of(request)


def start_job(ctx, request, kind: str, make):
    """Start a background job owned by this session (studio.jobs.SessionJobs): a one-line gr.Error when this session
    already runs one of the kind or the server runs its limit."""
    try:
        return ctx.jobs.start(owner_of(request), kind, make)
    except ValueError as exc:  # incl. studio.jobs.Busy
        raise refuse(str(exc)) from None


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


def running_job(ctx, request, kind: str):
    """This browser's (or session's) `kind` job while it runs, else None: what a reopened page shows."""
    job = ctx.jobs.get(owner_of(request), kind)
    return job if job is not None and job.state().status == "running" else None


def cancel_job(ctx, request, kind: str, message: str) -> str:
    """Cancel this session's `kind` job (never another session's)."""
    if not ctx.jobs.cancel(owner_of(request), kind):
        return "Nothing of yours is running."
    return message
