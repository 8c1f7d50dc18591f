"""The studio app: a tab per module in `TABS`; each tab module has `TITLE`, `render(ctx)` and `listen(ctx, ui)`.

Nothing heavy happens at import or build time: the Stylizer (and its models) is created on first use. A tab
module may also have `unload(ctx)`, returning a function run when a page is closed (the Webcam tab frees that
page's stream), and `HEAD`, HTML put into the page's <head> by `launch` (scripts that must run before the page can
be used: the Webcam tab's camera watcher).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import gradio as gr

from ..config import StudioConfig
from ..jobs import SessionJobs
from . import api
from .components import character_choices
from .tabs import characters, distill, lora, stylize, video, webcam

TABS = [stylize, video, webcam, characters, lora, distill]
OWNER_JS = (Path(__file__).resolve().parent / "owner.js").read_text()  # the browser's id for its jobs (tabs.owner_of)


@dataclass
class UIContext:
    """What every tab shares: the config and one lazily created Stylizer."""

    cfg: StudioConfig
    components: dict = field(default_factory=dict)  # "tab.name" -> component, for updates across tabs
    # Background jobs, each its session's own; over all sessions one training job of each kind at a time (each holds
    # gigabytes and both cores) and two video conversions.
    jobs: SessionJobs = field(default_factory=lambda: SessionJobs({"lora": 1, "distill": 1, "video": 2}))
    webcam: Optional[object] = None  # the Webcam tab's live streams (realtime.live.WebcamSessions), made on first use
    pickers: list = field(default_factory=list)  # every character dropdown (components.character_picker)
    character_saved: list = field(default_factory=list)  # events after which the pickers are refreshed
    fits: Optional[object] = None  # the Characters tab's unsaved fits per session (characters.Fits), on first use
    api_docs: dict = field(default_factory=dict)  # endpoint -> {parameter: studio.ui.api.Param}, from the tabs
    on_load: list = field(default_factory=list)  # (handler, outputs) run when a page loads (a running job's progress)
    _stylizer: Optional[object] = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stylizer_created(self) -> bool:
        return self._stylizer is not None

    def stylizer(self):
        with self._lock:
            if self._stylizer is None:
                from .. import Stylizer

                self._stylizer = Stylizer(self.cfg)
            return self._stylizer


def build_app(cfg: StudioConfig, ctx: Optional[UIContext] = None) -> gr.Blocks:
    # The pages load models from this machine only (folders, files, the hub cache): a click never starts a download
    # of gigabytes, nor waits on the hub's retries when offline. `hf download` fetches a model once, elsewhere.
    cfg = replace(cfg, sd=replace(cfg.sd, local_files_only=True))
    ctx = ctx or UIContext(cfg)
    with gr.Blocks(title="Toonlab studio") as app:
        gr.Markdown("# Toonlab studio\nPhotos in, webtoon out. Runs on this machine; nothing is uploaded elsewhere.")
        with gr.Tabs():
            for tab in TABS:
                with gr.Tab(tab.TITLE, id=tab.__name__.rsplit(".", 1)[-1]):
                    ui = tab.render(ctx)
                    tab.listen(ctx, ui)
        for tab in TABS:
            if hasattr(tab, "unload"):
                app.unload(tab.unload(ctx))
        # Characters are read from disk whenever the page loads and after one is saved: a character saved in one
        # tab or session is in every picker, and usable through the API, without a restart.
        def refresh_pickers():
            choices = character_choices(ctx.cfg)
            return [gr.update(choices=choices) for _ in ctx.pickers]

        app.load(refresh_pickers, None, ctx.pickers, api_name=False, queue=False)
        for handler, outputs in ctx.on_load:
            app.load(handler, None, outputs, api_name=False, show_progress_on=outputs[0])
        for event in ctx.character_saved:
            event.then(refresh_pickers, None, ctx.pickers, api_name=False, queue=False)
    api.install(app, ctx.api_docs)
    app.toonlab_context = ctx  # for tests and callers that need the shared state
    return app


def launch(app: gr.Blocks, cfg: StudioConfig, **kwargs):
    """Launch on the configured host and port, with uploads bounded by `server.max_upload_mb`.

    Extra keyword arguments go to `Blocks.launch` (tests pass `prevent_thread_lock=True`, `quiet=True`).
    """
    options = dict(server_name=cfg.server.host, server_port=cfg.server.port,
                   max_file_size=f"{cfg.server.max_upload_mb}mb", theme=gr.themes.Soft(), show_error=True,
                   head="\n".join([f"<script>\n{OWNER_JS}</script>"]
                                  + [tab.HEAD for tab in TABS if hasattr(tab, "HEAD")]))
    return app.launch(**{**options, **kwargs})
