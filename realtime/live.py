"""Live webcam sessions: one realtime Stream per browser page, at most MAX_SESSIONS at once, frames written as
short-lived JPEGs. No gradio here: studio.ui.tabs.webcam turns these errors into messages on the page.

    sessions = WebcamSessions(cfg, cache_dir)
    session = sessions.get(page_id, dict(character="classic", line=0.6, texture=0.6, color=0.6, warp=0.5, assign=()))
    path = write_frame(session, session.stream.process(bound_size(frame)).image)
    sessions.close(page_id)                     # the page was closed: its stream stops, its JPEGs go a moment later

Each page's Stream is made on its first frame and run frame by frame in the caller's thread (`Stream.process`:
the lowest latency); a session with no frame for IDLE_S is closed when another page needs its place. A frame of
a page that has been closed opens nothing (gradio may run it after the page's unload). Output JPEGs are deleted
KEEP_FRAMES frames later, so a long session does not fill the disk.
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
import numpy as np

from studio.characters import list_characters

from .stream import Stream, StreamConfig
from .student import student_folder
from .video import parse_assignments

ENGINE = "auto"  # the fastest engine here (onnxruntime-int8 on a CPU); the page shows which
MAX_SESSIONS = 4  # webcam sessions streaming at once (2 CPU cores: more would only slow everyone down)
IDLE_S = 30.0  # a session with no frame for this long is closed when another one needs its place
MAX_SIZE = (1280, 720)  # long side, short side: larger camera frames are downscaled before processing
KEEP_FRAMES = 8  # output JPEGs kept per session (the page may still be fetching the last few)
FILES_GRACE_S = 5.0  # a closed session's JPEGs stay this long: the closing page may still fetch the last one
JPEG_QUALITY = 85
ENDED_KEPT = 1024  # closed pages remembered (a page's session hash is new on every load)


class SessionsFull(RuntimeError):
    """Every place is taken by a page that is still streaming."""


def missing_student(cfg, character: str) -> Optional[str]:
    """Why `character` cannot stream (it has no student), or None."""
    try:
        student_folder(cfg, character)
    except ValueError as exc:
        return str(exc)
    return None


def open_stream(cfg, character: str, factors: dict) -> Stream:
    """The per-session frame processor, prepared: `process(frame)` in the caller's thread (the lowest latency;
    the handler gets one frame at a time anyway), `update(character=..., line=...)`, `stats()`, `stop()`. Raises
    ValueError (no such character or student) or realtime.engines.EngineUnavailable."""
    return Stream(cfg, StreamConfig(character=character, engine=ENGINE, live=True, **factors)).prepare()


@dataclass
class Session:
    stream: object
    folder: Path
    settings: dict
    frames: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    last_stats: float = 0.0
    server_ms: list = field(default_factory=list)  # recent per-frame times in the handler (frame to JPEG)
    frame_times: list = field(default_factory=list)  # when the last frames were answered (monotonic s)
    stopped_said: bool = False  # the page's readout says the stream stopped (studio.ui.tabs.webcam.stopped_text)
    last_shot: Optional[tuple] = None  # (the latest stylised frame, its faces' boxes): what the booth takes
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)  # closing against writing a frame


def rolling_fps(times: list, now: float, window: float = 3.0) -> Optional[float]:
    """Frames per second answered over the last `window` seconds; None until there are three frames in it (the
    readout says "measuring" rather than flicker through 0)."""
    recent = [t for t in times if t >= now - window]
    if len(recent) < 3 or recent[-1] <= recent[0]:
        return None
    return (len(recent) - 1) / (recent[-1] - recent[0])


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
        way must not open a new stream that nobody would close. Raises SessionsFull when every place is taken,
        ValueError when a character has no student, EngineUnavailable when no engine runs here."""
        with self._lock:
            if key in self._ended:
                return None
            session = self._sessions.get(key)
            if session is None:
                self._reap_idle()
                if len(self._sessions) >= self.limit:
                    raise SessionsFull(f"{self.limit} webcam sessions are already streaming; try again later.")
                session = self._sessions[key] = self._open(key, settings)
        if settings != session.settings:
            changed = {k: v for k, v in settings.items() if session.settings.get(k) != v}
            if "assign" in changed:  # kept as sorted (track, character) pairs, so that settings compare
                changed["assign"] = dict(changed["assign"])
            session.stream.update(**changed)  # ValueError: no student for the character picked
            session.settings = dict(settings)
        session.last_seen = time.monotonic()
        return session

    def _open(self, key: str, settings: dict) -> Session:
        factors = {k: v for k, v in settings.items() if k not in ("character", "assign")}
        stream = open_stream(self.cfg, settings["character"], factors)
        if settings.get("assign"):
            try:
                stream.update(assign=dict(settings["assign"]))
            except ValueError:  # a character without a student: this stream is not kept
                stream.stop()
                raise
        folder = self.root / "".join(c for c in key if c.isalnum())[:64]
        folder.mkdir(parents=True, exist_ok=True)
        return Session(stream, folder, dict(settings))

    def _reap_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            self._close(self._sessions.pop(key))

    def current(self, key: str) -> Optional[Session]:
        """The session of page `key` as it stands (None before its first frame or after it closed); unlike `get`,
        it opens nothing and changes nothing."""
        return self._sessions.get(key)

    def settings(self, key: str) -> Optional[dict]:
        """The settings the stream of page `key` runs with, or None."""
        session = self.current(key)
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
        raise RuntimeError("could not encode the frame as a JPEG")
    with session.lock:
        if session.closed:
            return None
        path = session.folder / f"{session.frames:08d}.jpg"
        path.write_bytes(data.tobytes())
        (session.folder / f"{session.frames - KEEP_FRAMES:08d}.jpg").unlink(missing_ok=True)
        session.frames += 1
    return str(path)


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
    if any(missing_student(cfg, name) for name in cast.values()):
        return previous
    return tuple(sorted(cast.items()))
