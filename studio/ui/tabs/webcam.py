"""Webcam tab: the camera in, the character's student out, frame by frame. The character and the
line/texture/color/warp factors apply from the next frame; the achieved frames/s and the time per frame are
shown while it streams. Each person in the picture gets a number (the stream's face tracks; listed in the
readout, and written on the picture when asked), and "Characters per person" (`0=noir, 2=pastel`) draws those
people as other characters, as the Video tab and `python -m realtime.video --assign` do.

Route (measured: docs/PERFORMANCE.md, "Webcam tab"): Gradio's own webcam streaming, `gr.Image(sources=["webcam"],
streaming=True)` with `.stream(stream_every=STREAM_EVERY)`. The page grabs and sends a frame (a JPEG data URL)
every STREAM_EVERY seconds; the server keeps only the newest frame that arrived while it was busy, so the
latency stays one frame's processing plus the transport (no queue builds up) and the frame rate is what the
server can do. fastrtc (WebRTC) is not an option: every fastrtc release requires gradio<6, and installed beside
gradio 6.31 anyway its page component does not load (the page stays on "Loading...").

Each browser session gets its own `realtime.stream.Stream` (`open_stream`), made on its first frame, run frame by
frame in the handler's thread (`process`: the lowest latency), and closed when the page is closed (`unload`,
wired by studio.ui.app; a frame of that page still on its way then opens nothing) or, once it has had no frame
for IDLE_S, when another session needs its place. At most MAX_SESSIONS stream at once (also gradio's
concurrency limit for the event). Frames larger than 720p are downscaled first. Output frames are JPEGs written
to a per-session folder inside gradio's cache (served from there without a copy) and deleted KEEP_FRAMES frames
later, so a long session does not fill the disk.

The browser test (tests/test_ui_webcam.py) and tools/webcam_latency.py drive it in headless Chromium with a
fake camera, through the elem_ids set below.
"""
from __future__ import annotations

import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import gradio as gr
import numpy as np

from realtime.engines import EngineUnavailable
from realtime.stream import Stream, StreamConfig
from realtime.student import student_folder
from realtime.video import parse_assignments

from ...characters import list_characters, load_character

TITLE = "Webcam"
FACTORS = ("line", "texture", "color", "warp")
ENGINE = "auto"  # the fastest engine here (onnxruntime-int8 on a CPU); the page shows which
# s between the page's frame grabs; the server takes the newest when it is ready. Measured against 0.04 and 0.066:
# grabbing and sending more often costs the browser CPU that the server needs (on one machine), and was slower.
STREAM_EVERY = 0.1
TIME_LIMIT = 600  # s a stream may run before the page has to press record again (frees the slot for others)
MAX_SESSIONS = 4  # webcam sessions streaming at once (2 CPU cores: more would only slow everyone down)
IDLE_S = 30.0  # a session with no frame for this long is closed when another one needs its place
MAX_SIZE = (1280, 720)  # long side, short side: larger camera frames are downscaled before processing
KEEP_FRAMES = 8  # output JPEGs kept per session (the page may still be fetching the last few)
FILES_GRACE_S = 5.0  # a closed session's JPEGs stay this long: the closing page may still fetch the last one
JPEG_QUALITY = 85
STATS_EVERY = 0.5  # s between readout updates
ENDED_KEPT = 1024  # closed pages remembered (a page's session hash is new on every load)
HINT = ("Press the camera's record button and allow the camera when the browser asks. Browsers only give a page "
        "the camera on `http://127.0.0.1`, `http://localhost` or `https://`.")
# Gradio's webcam says nothing when the camera cannot be opened. HEAD goes into the page's <head> (studio.ui.app
# collects each tab's HEAD), so it runs before the page can ask for the camera: it watches the browser's camera
# requests and keeps the reason for a failure; CAMERA_STATUS_JS, run when the tab's status element is shown, puts
# that reason (and any later one) in #webcam-camera-status. Installed at load rather than with the tab, a click
# on the camera box that comes before the tab's scripts have run is still explained.
HEAD = """<script>
(() => {
  const cam = window.__toonlabCamera = {message: '', say: null, asked: 0};  // asked: camera requests so far
  const say = (msg) => { cam.message = msg; if (cam.say) cam.say(msg); };
  const reasons = {
    NotAllowedError: 'The browser refused the camera. Allow it for this page (the camera icon in the address bar, '
      + 'or the site settings), then click the camera box again.',
    SecurityError: 'The browser refused the camera for this page. Allow it in the site settings, then click the '
      + 'camera box again.',
    NotFoundError: 'No camera was found. Connect one, then click the camera box again.',
    OverconstrainedError: 'No camera here can give a picture the page asked for.',
    NotReadableError: 'The camera could not be started: another program may be using it.',
  };
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say('This browser gives no camera to this page: browsers allow cameras only on http://127.0.0.1, '
      + 'http://localhost or https://, and this page is ' + location.origin + '.');
    return;
  }
  const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    cam.asked += 1;
    try {
      const stream = await open(constraints);
      say('');
      return stream;
    } catch (e) {
      say(reasons[e.name] || ('The camera could not be opened: ' + e.name + ' ' + e.message));
      throw e;
    }
  };
})();
</script>"""
CAMERA_STATUS_JS = """
const cam = window.__toonlabCamera;
if (cam) {
  cam.say = (msg) => { props.value = msg; };  // this element, also after the tab re-renders
  // The element's own first value ('') can land after a first timeout and wipe a reason given before the tab showed
  // (seen in about one run in four): for two seconds, put the reason back whenever the element does not show it.
  const keep = (left) => {
    if (cam.message && !element.innerText.includes(cam.message)) props.value = cam.message;
    if (left > 0) setTimeout(() => keep(left - 1), 100);
  };
  setTimeout(() => keep(20), 0);
}
"""


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


def render(ctx) -> WebcamUI:
    chars = list_characters(ctx.cfg)
    default = next((c for c in chars if c.name == ctx.cfg.default_character), chars[0])
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy", height=360,
                              elem_id="webcam-input")
            camera_status = gr.HTML("", html_template="<strong>${value}</strong>", js_on_load=CAMERA_STATUS_JS,
                                    elem_id="webcam-camera-status", padding=False)
            character = gr.Dropdown([(c.display_name, c.name) for c in chars], value=default.name,
                                    label="Character", elem_id="webcam-character")
            factors = {name: gr.Slider(0.0, 1.0, value=getattr(default.defaults, name), step=0.05,
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
            readout = gr.Markdown("Not streaming.", elem_id="webcam-readout")
            notice = gr.Markdown(_student_notice(ctx.cfg, default.name) or HINT, elem_id="webcam-notice")
    return WebcamUI(camera, output, character, factors, readout, notice, camera_status, assign, show_ids)


def _student_notice(cfg, character: str) -> Optional[str]:
    """Why this character cannot stream (it has no student), or None."""
    try:
        student_folder(cfg, character)
    except ValueError as exc:
        return f"**No student for this character.** {exc}"
    return None


# ------------------------------------------------------------------------------------------- the frame step
def open_stream(cfg, character: str, factors: dict):
    """The per-session frame processor, prepared: `process(frame)` in the caller's thread (the lowest latency;
    the handler gets one frame at a time anyway), `update(character=..., line=...)`, `stats()`, `stop()`. Raises
    ValueError (no such character or student) or EngineUnavailable."""
    return Stream(cfg, StreamConfig(character=character, engine=ENGINE, live=True, **factors)).prepare()


# ------------------------------------------------------------------------------------------------ sessions
@dataclass
class Session:
    stream: object
    folder: Path
    settings: dict
    frames: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    last_stats: float = 0.0
    server_ms: list = field(default_factory=list)  # recent per-frame times in the handler (frame to JPEG)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)  # closing against writing a frame


class WebcamSessions:
    """The live streams, one per browser session (gradio's session hash), at most `limit` at once."""

    def __init__(self, cfg, cache_dir: str, limit: int = MAX_SESSIONS, idle_s: float = IDLE_S):
        self.cfg, self.limit, self.idle_s = cfg, limit, idle_s
        self.root = Path(cache_dir) / "toonlab-webcam"
        self._sessions: dict[str, Session] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()  # pages closed lately (their late frames are dropped)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: str, settings: dict) -> Optional[Session]:
        """This session's stream, made (and its settings applied) on its first frame; settings changed since
        the last frame are passed to the stream. None for a page that has been closed: a frame of it still on its
        way must not open a new stream that nobody would close. Raises gr.Error when the studio is full or there
        is no student."""
        with self._lock:
            if key in self._ended:
                return None
            session = self._sessions.get(key)
            if session is None:
                self._reap_idle()
                if len(self._sessions) >= self.limit:
                    raise gr.Error(f"{self.limit} webcam sessions are already streaming; try again later.")
                session = self._sessions[key] = self._open(key, settings)
        if settings != session.settings:
            changed = {k: v for k, v in settings.items() if session.settings.get(k) != v}
            if "assign" in changed:  # kept as sorted (track, character) pairs, so that settings compare
                changed["assign"] = dict(changed["assign"])
            try:
                session.stream.update(**changed)
            except ValueError as exc:  # no student for the character picked
                raise gr.Error(str(exc)) from None
            session.settings = dict(settings)
        session.last_seen = time.monotonic()
        return session

    def _open(self, key: str, settings: dict) -> Session:
        factors = {k: v for k, v in settings.items() if k not in ("character", "assign")}
        try:
            stream = open_stream(self.cfg, settings["character"], factors)
        except (ValueError, EngineUnavailable) as exc:
            raise gr.Error(str(exc)) from None
        if settings.get("assign"):
            try:
                stream.update(assign=dict(settings["assign"]))
            except ValueError as exc:  # a character without a student: this stream is not kept
                stream.stop()
                raise gr.Error(str(exc)) from None
        folder = self.root / "".join(c for c in key if c.isalnum())[:64]
        folder.mkdir(parents=True, exist_ok=True)
        return Session(stream, folder, dict(settings))

    def _reap_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            self._close(self._sessions.pop(key))

    def settings(self, key: str) -> Optional[dict]:
        """The settings the stream of page `key` runs with, or None."""
        session = self._sessions.get(key)
        return session.settings if session is not None else None

    def close(self, key: str) -> None:
        """The page `key` was closed: its stream is freed, and a frame of it that arrives later is dropped."""
        with self._lock:
            session = self._sessions.pop(key, None)
            self._ended[key] = None
            while len(self._ended) > ENDED_KEPT:
                self._ended.popitem(last=False)
        if session is not None:
            self._close(session)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            self._close(s, grace=0.0)

    @staticmethod
    def _close(session: Session, grace: Optional[float] = None) -> None:
        """Stop the session's stream at once; its frames go `grace` seconds later (FILES_GRACE_S): the page sends
        its unload while a fetch of its last frame may still be on its way, and gradio's file route raised on
        the missing file (a RuntimeError in the log)."""
        with session.lock:  # a frame still being processed for it is not written (write_frame)
            session.closed = True
            session.stream.stop()  # ends stage threads if any were started; the models go with the session
        grace = FILES_GRACE_S if grace is None else grace
        if grace <= 0:
            shutil.rmtree(session.folder, ignore_errors=True)
            return
        timer = threading.Timer(grace, shutil.rmtree, args=(session.folder,), kwargs=dict(ignore_errors=True))
        timer.daemon = True
        timer.start()


def bound_size(frame: np.ndarray, limit=MAX_SIZE) -> np.ndarray:
    """The frame downscaled (area-averaged) to fit `limit` (long side, short side) in either orientation."""
    h, w = frame.shape[:2]
    scale = min(1.0, max(limit) / max(h, w), min(limit) / min(h, w))
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def write_frame(session: Session, image: np.ndarray) -> Optional[str]:
    """The stylised frame as a JPEG in the session's folder, under a new name (the page fetches it by URL); the
    frame KEEP_FRAMES before it is deleted. None when the session has been closed meanwhile."""
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise gr.Error("Could not encode the frame.")
    with session.lock:
        if session.closed:
            return None
        path = session.folder / f"{session.frames:08d}.jpg"
        path.write_bytes(data.tobytes())
        (session.folder / f"{session.frames - KEEP_FRAMES:08d}.jpg").unlink(missing_ok=True)
        session.frames += 1
    return str(path)


def readout_text(stats: dict, server_ms: list, size: tuple, people: Sequence[int] = ()) -> str:
    """Frames/s achieved, the server's time per frame (decoded frame to JPEG written) and its stages; the numbers
    of the people in the picture (for "Characters per person")."""
    stages = " · ".join(f"{k} {v:.0f}" for k, v in stats.get("stages", {}).items() if v is not None)
    ms = float(np.median(server_ms)) if server_ms else 0.0
    return (f"**{stats.get('fps', 0.0):.1f} fps** · {ms:.0f} ms per frame on the server"
            + (f" ({stages} ms)" if stages else "") + f" · {size[0]}×{size[1]}"
            + (f" · {stats['engine']}" if stats.get("engine") else "")
            + ("\n\nPeople in the picture: " + ", ".join(f"**{i}**" for i in people) if people else ""))


def label_people(image: np.ndarray, tracks: Sequence) -> np.ndarray:
    """The frame with each tracked person's number written above their face (a copy; unconfirmed tracks are not
    numbered yet)."""
    out = image.copy()
    h = image.shape[0]
    for t in tracks:
        if t.id is None:
            continue
        x0, y0, x1, _ = t.box.as_int()
        size = max(0.5, min(2.0, (x1 - x0) / 80.0))
        text = str(t.id)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, max(1, round(2 * size)))
        x, y = max(0, x0), min(h - base, max(th + 4, y0 - base - 3))
        cv2.rectangle(out, (x - 3, y - th - 4), (x + tw + 3, y + base), (20, 20, 20), -1)
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), max(1, round(2 * size)),
                    cv2.LINE_AA)
    return out


def parse_cast(text: Optional[str], cfg, previous: tuple = ()) -> tuple:
    """"0=noir, 2=pastel" as sorted (track, character) pairs; while the text is not (yet) valid, or names a
    character without a student, the previous pairs (the box is read with every frame, also halfway through
    typing; a character the stream cannot draw would end the stream)."""
    try:
        cast = parse_assignments(text, [c.name for c in list_characters(cfg)])
    except ValueError:
        return previous
    if any(_student_notice(cfg, name) for name in cast.values()):
        return previous
    return tuple(sorted(cast.items()))


# --------------------------------------------------------------------------------------------------- events
def _sessions(ctx, output: gr.Image) -> WebcamSessions:
    with ctx._lock:
        if ctx.webcam is None:
            ctx.webcam = WebcamSessions(ctx.cfg, output.GRADIO_CACHE)
        return ctx.webcam


def listen(ctx, ui: WebcamUI) -> None:
    def frame(image, character, line, texture, color, warp, assign, show_ids, request: gr.Request):
        if image is None:
            return gr.skip(), gr.skip()
        sessions = _sessions(ctx, ui.output)
        before = sessions.settings(request.session_hash)
        cast = parse_cast(assign, ctx.cfg, before.get("assign", ()) if before else ())
        session = sessions.get(request.session_hash, dict(character=character, line=line, texture=texture,
                                                          color=color, warp=warp, assign=cast))
        if session is None:  # the page has been closed
            return gr.skip(), gr.skip()
        t0 = time.perf_counter()
        image = bound_size(np.ascontiguousarray(image[..., :3]))
        result = session.stream.process(image)
        out = write_frame(session, label_people(result.image, result.tracks) if show_ids else result.image)
        if out is None:
            return gr.skip(), gr.skip()
        session.server_ms = session.server_ms[-19:] + [(time.perf_counter() - t0) * 1e3]
        now = time.monotonic()
        if now - session.last_stats < STATS_EVERY:
            return out, gr.skip()
        session.last_stats = now
        people = sorted(t.id for t in result.tracks if t.id is not None)
        return out, readout_text(session.stream.stats(), session.server_ms, (image.shape[1], image.shape[0]), people)

    ui.camera.stream(frame, [ui.camera, ui.character, *ui.factors.values(), ui.assign, ui.show_ids],
                     [ui.output, ui.readout],
                     stream_every=STREAM_EVERY, time_limit=TIME_LIMIT, concurrency_limit=MAX_SESSIONS,
                     concurrency_id="webcam", show_progress="hidden", api_name=False)

    def on_character(name):
        ch = load_character(name, ctx.cfg)
        return [gr.update(value=getattr(ch.defaults, n)) for n in FACTORS] + [_student_notice(ctx.cfg, name) or HINT]

    ui.character.change(on_character, ui.character, [*ui.factors.values(), ui.notice], api_name=False)

    def on_assign(text, character):
        """Say at once what is wrong with the list (the stream keeps the last valid one meanwhile)."""
        from .video import parse_assignments

        try:
            cast = parse_assignments(text, ctx.cfg)
        except gr.Error as exc:
            return f"**Characters per person:** {exc.message} The last valid list stays in use."
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
