"""Webcam tab: the camera in, the character's student out, frame by frame. The character and the
line/texture/color/warp factors apply from the next frame; the achieved frames/s and the time per frame are
shown while it streams. Each person in the picture gets a number (the stream's face tracks; listed in the
readout, and written on the picture when asked), and "Characters per person" (`0=noir, 2=pastel`) draws those
people as other characters, as the Video tab and `python -m realtime.video --assign` do.

Route: Gradio's own webcam streaming, `gr.Image(sources=["webcam"], streaming=True)` with
`.stream(stream_every=STREAM_EVERY)`: the page sends a frame every STREAM_EVERY seconds, the server keeps only the
newest one that arrived while it was busy (why this route, and its latency: docs/PERFORMANCE.md, "Webcam tab").
Each page gets its own stream from `realtime.live.WebcamSessions`, closed when the page is closed (`unload`, wired
by studio.ui.app). The page scripts are webcam_camera.js (in the page's <head>: the browser's reason when the
camera cannot be opened) and webcam_camera_status.js (shows that reason).

The browser test (tests/test_ui_webcam.py) and tools/webcam_latency.py drive it in headless Chromium with a
fake camera, through the elem_ids set below.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import gradio as gr
import numpy as np

from realtime import live
from realtime.engines import EngineUnavailable
from realtime.video import parse_assignments

from ...booth import SHOTS
from ...characters import list_characters
from ...checks import FACTOR, Rule
from ...types import FACTORS
from ..booth import BoothUI, booth_options, make_page, render_booth
from ..components import character_picker, slider
from . import inputs_for, known_character, refuse

TITLE = "Webcam"
# s between the page's frame grabs; the server takes the newest when it is ready. Measured against 0.04 and 0.066:
# grabbing and sending more often costs the browser CPU that the server needs (on one machine), and was slower.
STREAM_EVERY = 0.1
TIME_LIMIT = 600  # s a stream may run before the page has to press record again (frees the slot for others)
STATS_EVERY = 0.5  # s between readout updates
STOPPED_AFTER = 2.0  # s without a frame after which the readout says the stream stopped (the Stop button sends none)
IDLE_CHECK_EVERY = 1.0  # s between the page's checks for that (a tiny request, not queued)
NOT_STREAMING = "Not streaming."
BOOTH_COUNTDOWN = Rule(0, 10, integer=True)  # s before each booth shot
HINT = ("Press the camera's record button and allow the camera when the browser asks. Browsers only give a page "
        "the camera on `http://127.0.0.1`, `http://localhost` or `https://`.")
_HERE = Path(__file__).resolve().parent
HEAD = f"<script>\n{(_HERE / 'webcam_camera.js').read_text()}</script>"  # collected into <head> by studio.ui.app
CAMERA_STATUS_JS = (_HERE / "webcam_camera_status.js").read_text()


@dataclass
class WebcamUI:
    camera: gr.Image
    output: gr.Image
    character: gr.Dropdown
    factors: dict  # factor name -> slider
    readout: gr.Markdown
    notice: gr.Markdown
    camera_status: gr.HTML
    assign: gr.Textbox
    show_ids: gr.Checkbox
    idle_check: gr.Timer
    booth: BoothUI
    booth_countdown: gr.Slider


def render(ctx) -> WebcamUI:
    chars = list_characters(ctx.cfg)
    default = next((c for c in chars if c.name == ctx.cfg.default_character), chars[0])
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy", height=360,
                              elem_id="webcam-input")
            camera_status = gr.HTML("", html_template="<strong>${value}</strong>", js_on_load=CAMERA_STATUS_JS,
                                    elem_id="webcam-camera-status", padding=False)
            character = character_picker(ctx, default.name, label="Character", elem_id="webcam-character")
            factors = {name: slider(0.0, 1.0, value=getattr(default.defaults, name), step=0.05,
                                       label=name.capitalize(), elem_id=f"webcam-{name}") for name in FACTORS}
            assign = gr.Textbox("", label="Characters per person (optional)", placeholder="0=noir, 2=pastel",
                                info="Person numbers as the readout lists them (tick the box below to see them "
                                     "on the picture); the others are drawn as the character above.",
                                elem_id="webcam-assign")
            show_ids = gr.Checkbox(False, label="Show person numbers on the picture", elem_id="webcam-show-ids")
        with gr.Column(scale=1, min_width=320):
            # No download button: each frame's file lives for KEEP_FRAMES frames only
            output = gr.Image(label="Stylised", interactive=False, height=360, buttons=["fullscreen"],
                              elem_id="webcam-output")
            readout = gr.Markdown(NOT_STREAMING, elem_id="webcam-readout")
            notice = gr.Markdown(_student_notice(ctx.cfg, default.name) or HINT, elem_id="webcam-notice")
            with gr.Accordion("Four-cut photo booth (네 컷 사진)", open=False, elem_id="webcam-booth"):
                countdown = slider(0, 10, value=3, step=1, precision=0, label="Countdown before each shot (s)",
                                   elem_id="webcam-booth-countdown")
                booth = render_booth("webcam", "Take four shots")
    idle_check = gr.Timer(IDLE_CHECK_EVERY)
    return WebcamUI(camera, output, character, factors, readout, notice, camera_status, assign, show_ids, idle_check,
                    booth, countdown)


def _student_notice(cfg, character: str) -> Optional[str]:
    """Why this character cannot stream (it has no student), or None."""
    reason = live.missing_student(cfg, character)
    return f"**No student for this character.** {reason}" if reason else None


def readout_text(fps: Optional[float], stats: dict, server_ms: list, size: tuple, people: Sequence[int] = ()) -> str:
    """Frames/s answered (rolling, over the last seconds: live.rolling_fps; "measuring" until known), the server's
    time per frame (decoded frame to JPEG written) and its stages; the people in the picture by number, #0, #1
    (the numbers "Characters per person" takes)."""
    stages = " · ".join(f"{k} {v:.0f}" for k, v in stats.get("stages", {}).items() if v is not None)
    ms = float(np.median(server_ms)) if server_ms else 0.0
    rate = f"**{fps:.1f} fps**" if fps is not None else "**measuring fps…**"
    return (f"{rate} · {ms:.0f} ms per frame on the server"
            + (f" ({stages} ms)" if stages else "") + f" · {size[0]}×{size[1]}"
            + (f" · {stats['engine']}" if stats.get("engine") else "")
            + "\n\nPeople in the picture: " + (", ".join(f"**#{i}**" for i in people) if people else "none found"))


def streaming(session, now: float) -> bool:
    """Frames arrived in the last STOPPED_AFTER seconds."""
    return bool(session.frame_times) and now - session.frame_times[-1] < STOPPED_AFTER


def stopped_text(session, now: float) -> Optional[str]:
    """The readout once a stream has stopped (no frame for STOPPED_AFTER s: the camera's Stop button, a closed
    camera), said once per stop; None while frames arrive or when it has been said."""
    if session is None or not session.frame_times or session.stopped_said or streaming(session, now):
        return None
    session.stopped_said = True
    return NOT_STREAMING  # cleared: no fps or people from a stream that has ended


# --------------------------------------------------------------------------------------------------- events
def _sessions(ctx, output: gr.Image) -> live.WebcamSessions:
    with ctx._lock:
        if ctx.webcam is None:
            ctx.webcam = live.WebcamSessions(ctx.cfg, output.GRADIO_CACHE)
        return ctx.webcam


def listen(ctx, ui: WebcamUI) -> None:
    def frame(camera, character, line, texture, color, warp, assign, show_ids, request: gr.Request):
        if camera is None:
            return gr.skip(), gr.skip()
        sessions = _sessions(ctx, ui.output)
        before = sessions.settings(request.session_hash)
        cast = live.parse_cast(assign, ctx.cfg, before.get("assign", ()) if before else ())
        try:
            factors = {k: FACTOR.check(k, v) for k, v in dict(line=line, texture=texture, color=color,
                                                               warp=warp).items()}
            session = sessions.get(request.session_hash, dict(character=character, assign=cast, **factors))
        except (live.SessionsFull, ValueError, EngineUnavailable) as exc:
            raise refuse(str(exc)) from None
        if session is None:  # the page has been closed
            return gr.skip(), gr.skip()
        t0 = time.perf_counter()
        image = live.bound_size(np.ascontiguousarray(camera[..., :3]))
        result = session.stream.process(image)
        session.last_shot = (result.image, [(t.box.x0, t.box.y0, t.box.x1, t.box.y1) for t in result.tracks])
        out = live.write_frame(session, live.label_people(result.image, result.tracks) if show_ids else result.image)
        if out is None:
            return gr.skip(), gr.skip()
        session.server_ms = session.server_ms[-19:] + [(time.perf_counter() - t0) * 1e3]
        now = time.monotonic()
        session.frame_times = session.frame_times[-89:] + [now]
        session.stopped_said = False
        if now - session.last_stats < STATS_EVERY:
            return out, gr.skip()
        session.last_stats = now
        people = sorted(t.id for t in result.tracks if t.id is not None)
        return out, readout_text(live.rolling_fps(session.frame_times, now), session.stream.stats(),
                                 session.server_ms, (image.shape[1], image.shape[0]), people)

    ui.camera.stream(frame, inputs_for(frame, ui), [ui.output, ui.readout],
                     stream_every=STREAM_EVERY, time_limit=TIME_LIMIT, concurrency_limit=live.MAX_SESSIONS,
                     concurrency_id="webcam", show_progress="hidden", api_name=False)

    def idle(request: gr.Request):
        """The readout after Stop: the stream handler is not called any more, so a timer notices the silence."""
        session = ctx.webcam.current(request.session_hash) if ctx.webcam is not None else None
        text = stopped_text(session, time.monotonic())
        return gr.skip() if text is None else text

    def take_booth(layout, captions, countdown, request: gr.Request):
        """Four shots of this page's live stylised camera, each after a visible countdown, on one page."""
        try:
            layout, lines = booth_options(layout, captions)
            wait_s = int(BOOTH_COUNTDOWN.check("countdown", countdown))
        except ValueError as exc:
            raise refuse(str(exc)) from None
        session = ctx.webcam.current(request.session_hash) if ctx.webcam is not None else None
        if session is None or session.last_shot is None or not streaming(session, time.monotonic()):
            raise refuse("Start the camera first: press its record button, then take the shots.")
        shots, boxes = [], []
        for i in range(SHOTS):
            for left in range(wait_s, 0, -1):
                yield f"## Shot {i + 1} of {SHOTS} in {left}…", gr.skip(), gr.skip()
                time.sleep(1.0)
            image, faces = session.last_shot
            shots.append(image.copy())
            boxes.append(faces)
            yield f"## Shot {i + 1} of {SHOTS}: taken", gr.skip(), gr.skip()
        page, path = make_page(ctx.cfg, shots, boxes, layout, lines, session.settings["character"])
        yield "Done: your four-cut page is below.", page, gr.update(value=path, interactive=True)

    ui.booth.button.click(take_booth, [ui.booth.layout, ui.booth.captions, ui.booth_countdown],
                          [ui.booth.status, ui.booth.page, ui.booth.download], api_name=False,
                          show_progress="hidden", concurrency_limit=live.MAX_SESSIONS, concurrency_id="webcam-booth")

    ui.idle_check.tick(idle, None, ui.readout, api_name=False, queue=False, show_progress="hidden")

    def on_character(name):
        ch = known_character(ctx.cfg, name)
        return ([gr.update(value=round(getattr(ch.defaults, n), 2)) for n in FACTORS]
                + [_student_notice(ctx.cfg, name) or HINT])

    ui.character.change(on_character, ui.character, [*ui.factors.values(), ui.notice], api_name=False)

    def on_assign(text, character):
        """Say at once what is wrong with the list (the stream keeps the last valid one meanwhile)."""
        try:
            cast = parse_assignments(text, [c.name for c in list_characters(ctx.cfg)])
        except ValueError as exc:
            return f"**Characters per person:** {exc} The last valid list stays in use."
        missing = [f"{name} (person {t})" for t, name in cast.items() if _student_notice(ctx.cfg, name)]
        if missing:
            return f"**No student for:** {', '.join(missing)}. The last valid list stays in use."
        return _student_notice(ctx.cfg, character) or HINT

    ui.assign.change(on_assign, [ui.assign, ui.character], ui.notice, api_name=False, show_progress="hidden")


def unload(ctx):
    """The function studio.ui.app registers with `Blocks.unload`: the closed page's stream is freed."""

    def close(request: gr.Request):
        if ctx.webcam is not None:
            ctx.webcam.close(request.session_hash)

    return close
