"""The realtime path as a stream: frames in, stylised frames out, stages running in parallel.

    stream = Stream(cfg, StreamConfig(character="classic", engine="onnxruntime", live=True)).prepare()
    res = stream(frame)                  # = stream.process(frame): every stage in this thread (lowest latency)
    res.image, res.tracks, res.timings   # RGB uint8; the faces with their track ids; ms per stage
    stream.update(character="noir", line=0.4)   # live changes, applied from the next frame
    stream.stats()                       # {"fps", "latency_ms", "stages": {name: ms}, "dropped", "frames", ...}

    for res in stream.run(frames):       # pipelined: one thread per stage, results in input order
        ...
    stream.start(); stream.put(frame, meta); res = stream.get(); ...; stream.close()   # the same, push style

Stages, each in its own thread when pipelined, joined by bounded queues (`queue_size` frames each):

1. perceive: faces. Full detection (the face backend) every `detect_every` frames, or sooner when a face is
   lost; in between, each face's landmarks are followed by pyramidal Lucas-Kanade optical flow from the previous
   frame (`FaceFollower`), a few ms instead of ~100. Frames longer than `perceive_side` (1280) are searched at
   that size and the faces scaled back. (The teacher path finds faces itself: nothing here.)
2. render: the frame as the default character: its student through the engine (faces warped toward the
   character's geometry first; realtime.student), or the teacher.
3. compose: face tracks (ByteTrack; studio.perception.tracking), assigned tracks redrawn as their own character
   over their share of the person mask, then temporal blending along the input's optical flow
   (realtime.temporal) so the style does not flicker.

`max_side` (say 1280 for 1080p input on a small CPU): frames larger than that are stylised at that long side
and scaled back up at the end: every stage costs what it costs at 720p, and the output keeps the input's size
(softer than stylising at full size; the faces and tracks are reported in the input's pixels).

`live=True` (a camera): when a stage falls behind, the oldest waiting frame is dropped (counted in
`stats()["dropped"]`), so latency and memory stay bounded whatever the input rate. `live=False` (files): nothing
is dropped, `put` waits instead. The stages hold no per-frame state beyond the queues, the tracker and the
previous frame; memory stays flat over any number of frames (`python -m realtime.bench_stream --memory`).
onnxruntime, OpenCV and the x264 encoder release the GIL, so threads overlap on a multi-core CPU.
"""
from __future__ import annotations

import collections
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, Sequence

import cv2
import numpy as np

from studio.color import shrink

STAGES = ("perceive", "render", "compose")


# ----------------------------------------------------------------------------------------------- per person
def person_regions(shape: Sequence[int], boxes: Sequence, person: np.ndarray, scale: int = 4) -> list[np.ndarray]:
    """One soft mask (H, W) float32 per face box: the part of the person mask that belongs to that face's person.

    Each pixel goes to the nearest face in face units (a face width sideways, a face height above, three face
    heights below: the body hangs under the face), within 2.5 of those units (about the shoulders sideways and
    the feet below). The face's own ellipse is always in, as the person mask can miss a face. Computed at
    1/`scale` resolution, feathered, and resized back."""
    h, w = shape[:2]
    hs, ws = max(1, -(-h // scale)), max(1, -(-w // scale))
    small = cv2.resize(person.astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
    ys = ((np.arange(hs, dtype=np.float32) + 0.5) * h / hs)[:, None]
    xs = ((np.arange(ws, dtype=np.float32) + 0.5) * w / ws)[None, :]
    best = np.full((hs, ws), np.inf, np.float32)
    label = np.full((hs, ws), -1, np.int32)
    ellipses = []
    for i, b in enumerate(boxes):
        cx, cy = b.center
        fw, fh = max(b.width, 1.0), max(b.height, 1.0)
        dx = (xs - cx) / fw
        dy = (ys - cy) / fh
        d = dx * dx + np.where(dy > 0, dy / 3.0, dy) ** 2
        take = (d < best) & (d <= 2.5 ** 2)
        best[take], label[take] = d[take], i
        ellipses.append((dx / 0.65) ** 2 + (dy / 0.75) ** 2 <= 1.0)  # the face box, a little larger
    out = []
    for i, b in enumerate(boxes):
        m = np.maximum(np.where(label == i, small, 0.0), ellipses[i].astype(np.float32))
        sigma = max(0.8, 0.08 * max(b.width, 1.0) / (w / ws))
        m = cv2.GaussianBlur(m, (0, 0), sigma)
        out.append(np.clip(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0))
    return out


# ------------------------------------------------------------------------------------------------ renderers
class FrameRenderer(Protocol):
    """What a Stream draws with (StudentFrames, TeacherFrames). `engine` (or None) and `teacher` (or None) name
    it in reports; `finds_faces` says that `render` finds the faces itself (the perceive stage then skips)."""

    engine: object
    teacher: Optional[str]
    finds_faces: bool

    def prepare(self, characters: Sequence[str]) -> None:
        """Load what these characters need now, so a missing one fails before the first frame."""

    def set_factors(self, factors: dict) -> None:
        """New line/texture/color/warp values (None: the character's default), from the next frame on."""

    def render(self, frame: np.ndarray, faces: Optional[list], character: str
               ) -> tuple[np.ndarray, list, Optional[np.ndarray]]:
        """The frame drawn as `character`; the faces (those given, or found); its person mask when known."""

    def person(self, frame: np.ndarray, faces: list) -> np.ndarray:
        """The soft person mask (H, W), when `render` did not give it."""


class StudentFrames:
    """The realtime path: each needed character's student on one engine; faces come from the stream."""

    finds_faces = False
    teacher = None

    def __init__(self, cfg, engine: str = "auto", student: Optional[str] = None,
                 factors: Optional[dict] = None, default: Optional[str] = None, device: str = "auto",
                 contours: bool = True):
        from .student import StudentStylizer

        self.cfg, self.engine_name, self.device, self.contours = cfg, engine, device, contours
        self.factors = dict(factors or {})
        default = default or cfg.default_character
        self._students = {default: StudentStylizer(cfg, default, engine, student, device=device, contours=contours,
                                                   **self.factors)}
        self.engine = self._students[default].engine

    def student(self, character: str):
        if character not in self._students:  # another character: its own student from students/<name>/
            from .student import StudentStylizer

            self._students[character] = StudentStylizer(self.cfg, character, self.engine_name, None,
                                                        device=self.device, contours=self.contours, **self.factors)
        return self._students[character]

    def prepare(self, characters: Sequence[str]) -> None:
        for c in characters:
            self.student(c)

    def set_factors(self, factors: dict) -> None:
        self.factors = dict(factors)
        for s in list(self._students.values()):
            s.set_factors(**self.factors)

    def render(self, frame: np.ndarray, faces, character: str):
        return self.student(character)(frame, faces), faces, None

    def person(self, frame: np.ndarray, faces) -> np.ndarray:
        from studio.perception import segment_person

        return segment_person(frame, faces)


class TeacherFrames:
    """The quality path: the studio's Stylizer on each frame (it finds faces and people itself)."""

    finds_faces = True
    engine = None

    def __init__(self, cfg, teacher: str = "classic", factors: Optional[dict] = None, default: Optional[str] = None):
        from studio import Stylizer

        self.stylizer = Stylizer(cfg)
        self.teacher = teacher
        self.factors = dict(factors or {})
        self.prepare([default or cfg.default_character])

    def _params(self, character: str):
        from studio import StylizeParams

        return StylizeParams(character=character, teacher=self.teacher, **self.factors)

    def prepare(self, characters: Sequence[str]) -> None:
        for c in characters:
            self.stylizer.prepare(self._params(c))

    def set_factors(self, factors: dict) -> None:
        self.factors = dict(factors)

    def render(self, frame: np.ndarray, faces, character: str):
        result = self.stylizer(frame, self._params(character))
        return result.image, result.faces, result.perception.person

    def person(self, frame: np.ndarray, faces) -> np.ndarray:  # not called: `render` gives the teacher's mask
        from studio.perception import segment_person

        return segment_person(frame, faces)


# ------------------------------------------------------------------------------------------------ perceive
def scale_face(face, s: float):
    """The face with its box, landmarks (x, y) and keypoints scaled by `s` (a frame resized by `s`)."""
    from studio.types import Box

    b = face.box
    lm = None
    if face.landmarks is not None:
        lm = face.landmarks.astype(np.float32).copy()
        lm[:, :2] *= s
    kp = None if face.keypoints is None else face.keypoints * s
    return replace(face, box=Box(b.x0 * s, b.y0 * s, b.x1 * s, b.y1 * s), landmarks=lm, keypoints=kp)


class FaceFollower:
    """Faces on every frame for the price of a detection every `every` frames.

    In between, each face's points (its landmarks, or a 5×5 grid over its box when it has none) are followed
    from the previous frame by pyramidal Lucas-Kanade flow, checked backwards (a point counts when the round
    trip returns within `max_error` px); lost points move with the median of the kept ones, and the box follows
    their median motion and spread. A face with fewer than `min_kept` of its points kept is lost. When a lost
    face was prominent (at least `prominent` of the frame's shorter side wide: its warp would visibly snap
    back), the frame is detected again at once; a small lost face is dropped until the next detection (the
    tracker keeps its id meanwhile), so a crowd does not force a detection on every frame."""

    def __init__(self, backend, every: int = 5, min_kept: float = 0.5, max_error: float = 1.5,
                 prominent: float = 0.12):
        if every < 1:
            raise ValueError(f"detect_every must be at least 1, got {every}")
        self.backend, self.every = backend, int(every)
        self.min_kept, self.max_error, self.prominent = float(min_kept), float(max_error), float(prominent)
        self.reset()  # also zeroes `detections`: the full detections run since, for stats and tests

    def reset(self) -> None:
        self._grey = None
        self._faces: list = []
        self._since = 0
        self.detections = 0

    def __call__(self, frame: np.ndarray) -> list:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        faces = None
        if self._grey is not None and self._since < self.every and self._grey.shape == grey.shape:
            faces = self._follow(self._grey, grey)
        if faces is None:
            faces = self.backend.detect(frame)
            self.detections += 1
            self._since = 0
        self._since += 1
        self._grey, self._faces = grey, faces
        return faces

    @staticmethod
    def _points(face) -> np.ndarray:
        if face.landmarks is not None:
            return np.ascontiguousarray(face.landmarks[:, :2], np.float32)
        b = face.box
        gx, gy = np.meshgrid(np.linspace(b.x0 + b.width * 0.2, b.x1 - b.width * 0.2, 5),
                             np.linspace(b.y0 + b.height * 0.2, b.y1 - b.height * 0.2, 5))
        return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)

    def _follow(self, prev: np.ndarray, cur: np.ndarray) -> Optional[list]:
        """The previous faces moved onto `cur` (small lost ones left out), or None when a prominent face is lost
        or there were no faces."""
        from studio.types import Box

        if not self._faces:
            return None  # nothing to follow: new faces only come from a detection
        sets = [self._points(f) for f in self._faces]
        pts = np.concatenate(sets).reshape(-1, 1, 2)
        params = dict(winSize=(15, 15), maxLevel=3,
                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **params)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **params)
        ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
                                                       < self.max_error)
        nxt = nxt.reshape(-1, 2)
        out, start = [], 0
        for face, p in zip(self._faces, sets):
            k = len(p)
            good, q = ok[start:start + k], nxt[start:start + k]
            start += k
            if good.mean() < self.min_kept:
                if face.box.width >= self.prominent * min(cur.shape[:2]):
                    return None
                continue
            shift = np.median(q[good] - p[good], axis=0)
            q = np.where(good[:, None], q, p + shift)
            spread0, spread1 = p[good].std(axis=0).mean(), q[good].std(axis=0).mean()
            scale = float(np.clip(spread1 / spread0, 0.8, 1.25)) if spread0 > 1e-3 else 1.0
            (cx, cy), (hw, hh) = face.box.center, (face.box.width * scale / 2, face.box.height * scale / 2)
            cx, cy = cx + float(shift[0]), cy + float(shift[1])
            box = Box(cx - hw, cy - hh, cx + hw, cy + hh)
            lm = None
            if face.landmarks is not None:
                lm = face.landmarks.astype(np.float32).copy()
                lm[:, :2] = q
            kp = None if face.keypoints is None else face.keypoints + np.asarray(shift, face.keypoints.dtype)
            out.append(replace(face, box=box, landmarks=lm, keypoints=kp))
        return out


# --------------------------------------------------------------------------------------------------- stream
@dataclass
class StreamConfig:
    """How a Stream draws. Factors left None take the character's defaults."""

    character: Optional[str] = None  # None: the config's default character
    engine: str = "auto"  # the student's engine (auto: the fastest here; torch, onnxruntime(-int8), tensorrt) ...
    teacher: Optional[str] = None  # ... or a teacher (classic, sd) on every frame instead: slow
    student: Optional[str] = None  # the default character's student folder (default: students/<character>/)
    line: Optional[float] = None
    texture: Optional[float] = None
    color: Optional[float] = None
    warp: Optional[float] = None
    assign: dict = field(default_factory=dict)  # track id -> character
    detect_every: int = 5  # full face detection every N frames (1: every frame); followed by optical flow between
    temporal: bool = True  # flow-guided blending against flicker (realtime.temporal)
    temporal_strength: float = 0.8
    max_side: Optional[int] = None  # stylise frames larger than this at this long side, then scale back up
    perceive_side: Optional[int] = 1280  # find faces on a copy at most this long (the detector sees 192 px anyway)
    contours: bool = True  # the student path draws the teacher's contour lines (realtime.student.contour_ink)
    live: bool = False  # True: drop the oldest frame when a stage falls behind (a camera); False: never drop
    queue_size: int = 2  # frames waiting between two stages
    device: str = "auto"

    def factors(self) -> dict:
        return dict(line=self.line, texture=self.texture, color=self.color, warp=self.warp)


@dataclass
class StreamResult:
    image: np.ndarray  # RGB uint8, the input's size
    tracks: list  # studio.perception.tracking.Track per face (None ids while unconfirmed)
    index: int  # the input frame's number (0-based, counting dropped frames)
    timings: dict  # stage -> ms for this frame, and "latency" (put to result)
    meta: Any = None  # what was given with the frame to `put`


class _Packet:
    __slots__ = ("index", "frame", "meta", "t_in", "faces", "image", "person", "timings", "size")

    def __init__(self, index: int, frame: np.ndarray, meta):
        self.index, self.frame, self.meta = index, frame, meta
        self.t_in = time.perf_counter()
        self.faces = self.image = self.person = self.size = None
        self.timings: dict[str, float] = {}


_END = object()


class Stream:
    """See the module doc. Not for two consumers at once; `update` and `stats` may be called from any thread."""

    def __init__(self, cfg, config: Optional[StreamConfig] = None, renderer: Optional[FrameRenderer] = None):
        self.cfg = cfg
        self.config = config or StreamConfig()
        self.renderer = renderer
        self.character = self.config.character or cfg.default_character
        self._lock = threading.Lock()  # settings (character, factors, assignments) against the stages
        self._count_lock = threading.Lock()
        self._assign = dict(self.config.assign)
        self._prepared = False
        self._threads: list[threading.Thread] = []
        self._history: dict[str, collections.deque] = {k: collections.deque(maxlen=120)
                                                       for k in (*STAGES, "latency")}
        self._out_times: collections.deque = collections.deque(maxlen=240)
        self.frames_in = self.frames_out = self.dropped = 0

    # ------------------------------------------------------------------ setup
    def prepare(self) -> "Stream":
        """Load the student (or teacher), the face backend and the tracker; warm the engine up. Raises what the
        loaders raise (ValueError for no such character/student, EngineUnavailable, SDModelMissing, ...)."""
        from studio.perception.tracking import CharacterAssignments, FaceTracker

        from .temporal import TemporalBlender

        c = self.config
        if self.renderer is None:
            if c.teacher:
                self.renderer = TeacherFrames(self.cfg, c.teacher, c.factors(), self.character)
            else:
                self.renderer = StudentFrames(self.cfg, c.engine, c.student, c.factors(), self.character, c.device,
                                              c.contours)
        self.renderer.prepare(sorted({self.character, *self._assign.values()}))
        self.follower = None
        if not self.renderer.finds_faces:
            from studio.perception.faces import get_face_backend

            backend = get_face_backend(self.cfg.perception.face_backend, self.cfg.perception)
            self.follower = FaceFollower(backend, c.detect_every)
        self.tracker = FaceTracker()
        self.cast = CharacterAssignments(default=self.character, by_track=self._assign)
        self.blender = TemporalBlender(c.temporal_strength) if c.temporal else None
        if self.renderer.engine is not None:  # the first run of an engine allocates: not on the first frame
            self.renderer.render(np.zeros((64, 64, 3), np.uint8), [], self.character)
        self._prepared = True
        return self

    def reset(self) -> None:
        """Forget the previous frames (a new video, or a cut): faces, tracks, the temporal history, the frame
        numbers and the statistics."""
        if not self._prepared:
            self.prepare()
        self.frames_in = self.frames_out = self.dropped = 0
        for h in (*self._history.values(), self._out_times):
            h.clear()
        if self.follower is not None:
            self.follower.reset()
        self.tracker.reset()
        if self.blender is not None:
            self.blender.reset()

    def update(self, character: Optional[str] = None, assign: Optional[dict] = None, **factors) -> None:
        """Change the character, track assignments or factors (line, texture, color, warp; None = the
        character's default) from the next frame on. A character without a student raises ValueError here."""
        unknown = set(factors) - {"line", "texture", "color", "warp"}
        if unknown:
            raise ValueError(f"unknown factors {sorted(unknown)}")
        with self._lock:
            if character is not None or assign is not None:
                wanted = [character] if character else []
                self.renderer.prepare(wanted + list((assign or {}).values()))
                if character:
                    self.character = self.cast.default = character
                if assign is not None:
                    self.cast.by_track = dict(assign)
            if factors:
                merged = {**self.renderer.factors, **factors}
                self.renderer.set_factors(merged)

    @property
    def name(self) -> str:
        r = self.renderer
        return f"{r.engine.name} on {r.engine.device}" if r.engine is not None else f"the {r.teacher} teacher"

    # ------------------------------------------------------------------ stages
    def _perceive(self, p: _Packet) -> None:
        h, w = p.frame.shape[:2]
        p.frame, s = shrink(p.frame, self.config.max_side)
        if s < 1.0:  # every stage works on the smaller frame; compose scales the result back
            p.size = (w, h)
        if self.follower is not None:
            # A 1080p crowd searched at 1280 px: detection 133 -> 74 ms, the flow between 12 -> 6 ms
            small, k = shrink(p.frame, self.config.perceive_side)
            p.faces = self.follower(small)
            if k < 1.0:
                p.faces = [scale_face(f, 1.0 / k) for f in p.faces]

    def _render(self, p: _Packet) -> None:
        with self._lock:
            character = self.character
            p.image, p.faces, p.person = self.renderer.render(p.frame, p.faces, character)

    def _compose(self, p: _Packet) -> list:
        tracks = self.tracker.update(p.faces or [])
        with self._lock:
            redraw: dict[str, list[int]] = {}
            for i, t in enumerate(tracks):
                character = self.cast.character_for(t.id)
                if character != self.cast.default:
                    redraw.setdefault(character, []).append(i)
            if redraw:
                person = p.person if p.person is not None else self.renderer.person(p.frame, p.faces)
                regions = person_regions(p.frame.shape, [t.box for t in tracks], person)
                blended = p.image.astype(np.float32)
                for character, idx in redraw.items():
                    m = np.clip(sum(regions[i] for i in idx), 0.0, 1.0)[..., None]
                    other = self.renderer.render(p.frame, p.faces, character)[0].astype(np.float32)
                    blended = blended * (1.0 - m) + other * m
                p.image = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        if self.blender is not None:
            p.image = self.blender(p.frame, p.image)
        if p.size is not None:  # back to the input's size; faces and tracks in its pixels too
            s = p.size[0] / p.frame.shape[1]
            p.image = cv2.resize(p.image, p.size, interpolation=cv2.INTER_LINEAR)
            tracks = [replace(t, face=scale_face(t.face, s)) for t in tracks]
        return tracks

    def _run_stage(self, name: str, fn: Callable, p: _Packet):
        t0 = time.perf_counter()
        out = fn(p)
        ms = (time.perf_counter() - t0) * 1000.0
        p.timings[name] = ms
        self._history[name].append(ms)
        return out

    def _finish(self, p: _Packet, tracks: list) -> StreamResult:
        now = time.perf_counter()
        p.timings["latency"] = (now - p.t_in) * 1000.0
        self._history["latency"].append(p.timings["latency"])
        self._out_times.append(now)
        self.frames_out += 1
        return StreamResult(image=p.image, tracks=tracks, index=p.index, timings=dict(p.timings), meta=p.meta)

    def process(self, frame: np.ndarray, meta=None) -> StreamResult:
        """One frame through every stage in this thread (no queues, no drops): the lowest latency."""
        if not self._prepared:
            self.prepare()
        p = _Packet(self.frames_in, frame, meta)
        self.frames_in += 1
        self._run_stage("perceive", self._perceive, p)
        self._run_stage("render", self._render, p)
        tracks = self._run_stage("compose", self._compose, p)
        return self._finish(p, tracks)

    __call__ = process  # StreamDiffusion's shape: prepare() once, stream(frame) per frame

    # ------------------------------------------------------------------ pipelined
    def start(self) -> "Stream":
        """Start the stage threads (after `prepare`, which it calls when needed). Then `put` and `get`."""
        if self._threads:
            raise RuntimeError("the stream is already running")
        if not self._prepared:
            self.prepare()
        n = max(1, int(self.config.queue_size))
        self._queues = [queue.Queue(n) for _ in range(len(STAGES) + 1)]
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._closed = False

        def worker(i: int, name: str, fn: Callable):
            q_in, q_out = self._queues[i], self._queues[i + 1]
            while True:
                p = q_in.get()
                if p is _END or self._stop.is_set():
                    self._offer(q_out, _END, force=self._stop.is_set())
                    return
                try:
                    if name == "compose":
                        tracks = self._run_stage(name, fn, p)
                        self._offer(q_out, self._finish(p, tracks))
                    else:
                        self._run_stage(name, fn, p)
                        self._offer(q_out, p)
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                    self._error = exc
                    self._stop.set()
                    self._offer(q_out, _END, force=True)
                    return

        fns = {"perceive": self._perceive, "render": self._render, "compose": self._compose}
        self._threads = [threading.Thread(target=worker, args=(i, s, fns[s]), name=f"stream-{s}", daemon=True)
                         for i, s in enumerate(STAGES)]
        for t in self._threads:
            t.start()
        return self

    def _offer(self, q: queue.Queue, item, force: bool = False) -> None:
        """Put into a stage queue: live streams drop the oldest waiting frame when it is full; file streams wait
        (and give up when the stream is stopped)."""
        while True:
            if self.config.live or force:
                try:
                    q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        old = q.get_nowait()
                    except queue.Empty:
                        continue
                    if old is _END:  # never drop the end marker
                        q.put(old)
                        return
                    with self._count_lock:
                        self.dropped += 1
                    continue
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def put(self, frame: np.ndarray, meta=None) -> None:
        """The next input frame (RGB uint8). Live: never waits (an old frame may be dropped). Files: waits while
        the first queue is full. Raises the exception of a stage that failed."""
        if not self._threads or self._closed:
            raise RuntimeError("start() the stream before put(), and do not put() after close()")
        self._raise()
        p = _Packet(self.frames_in, frame, meta)
        self.frames_in += 1
        self._offer(self._queues[0], p)

    def close(self) -> None:
        """No more frames: the stages finish what they hold, then `get` returns None."""
        if self._threads and not self._closed:
            self._closed = True
            self._offer(self._queues[0], _END)

    def get(self, timeout: Optional[float] = None) -> Optional[StreamResult]:
        """The next result, in input order; None once the stream is closed and drained (or on timeout: check
        `running`). Raises the exception of a stage that failed."""
        try:
            item = self._queues[-1].get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._join()
            self._raise()
            return None
        return item

    def ready(self) -> list[StreamResult]:
        """The results available now, without waiting."""
        out = []
        while True:
            try:
                item = self._queues[-1].get_nowait()
            except queue.Empty:
                return out
            if item is _END:
                self._queues[-1].put(item)  # leave the end for get()
                self._raise()
                return out
            out.append(item)

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def stop(self) -> None:
        """Abandon the frames in flight and end the threads (for a cancelled job, or a closed camera)."""
        if not self._threads:
            return
        self._stop.set()
        for q in self._queues:
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
            self._offer(q, _END, force=True)
        self._join()

    def _join(self) -> None:
        for t in self._threads:
            t.join(timeout=30)
        self._threads = []

    def _raise(self) -> None:
        if getattr(self, "_error", None) is not None:
            exc, self._error = self._error, None
            raise exc  # the stage's own exception, with its traceback

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[StreamResult]:
        """Every frame of `frames` through the pipelined stages; results in order as they come. `frames` is
        read in its own thread (capture), so decoding overlaps the stages too."""
        self.start()
        failure: list[BaseException] = []

        def feed():
            try:
                for f in frames:
                    if self._stop.is_set():
                        break
                    self.put(f)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failure.append(exc)
            finally:
                self.close()

        feeder = threading.Thread(target=feed, name="stream-capture", daemon=True)
        feeder.start()
        try:
            while True:
                res = self.get()
                if res is None:
                    break
                yield res
        finally:
            self.stop()
            feeder.join(timeout=30)
        if failure:
            raise failure[0]

    # ------------------------------------------------------------------ numbers
    def stats(self) -> dict:
        """Frames per second out (over the last ~2 s), median ms per stage and latency over the last 120 frames,
        frames in/out, frames dropped, full face detections run, and what draws the frames ("engine": `name`)."""
        times = list(self._out_times)
        recent = [t for t in times if t >= (times[-1] - 2.0)] if times else []
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0

        def med(name):
            values = list(self._history[name])
            return round(statistics.median(values), 2) if values else None

        return {"fps": round(fps, 2), "latency_ms": med("latency"), "stages": {s: med(s) for s in STAGES},
                "frames": self.frames_out, "frames_in": self.frames_in, "dropped": self.dropped,
                "detections": self.follower.detections if getattr(self, "follower", None) is not None else None,
                "engine": self.name if self._prepared else None}
