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

1. perceive: faces, found every `detect_every` frames and followed by optical flow in between
   (studio.perception.tracking.FaceFollower) on a copy at most `perceive_side` long. (The teacher finds its own.)
2. render: the frame as the default character (realtime.renderers: its student on an engine, or the teacher).
3. compose: face tracks (ByteTrack), assigned tracks redrawn as their own character over their share of the
   person mask (studio.compose.person_regions), then blending along the input's optical flow (realtime.temporal)
   so the style does not flicker.

Every stage gives the same result in the pipelined and the sequential mode: a stage reads only its packet and its
own state (the follower, the tracker, the blender), and no call in it depends on where its buffers land
(tests/test_stream.py).

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
from typing import Any, Callable, Iterable, Iterator, Optional

import cv2
import numpy as np

from studio.checks import FACTOR
from studio.color import shrink
from studio.compose import person_regions
from studio.perception.faces import get_face_backend
from studio.perception.tracking import CharacterAssignments, FaceFollower, FaceTracker
from studio.types import FACTORS

from .renderers import FrameRenderer, StudentFrames, TeacherFrames
from .temporal import TemporalBlender

STAGES = ("perceive", "render", "compose")


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
    __slots__ = ("index", "frame", "meta", "t_in", "faces", "image", "person", "tracks", "timings", "size")

    def __init__(self, index: int, frame: np.ndarray, meta):
        self.index, self.frame, self.meta = index, frame, meta
        self.t_in = time.perf_counter()
        self.faces = self.image = self.person = self.tracks = self.size = None
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
        self.follower: Optional[FaceFollower] = None  # made by prepare(): faces found and followed (student path)
        self.tracker: Optional[FaceTracker] = None
        self.cast: Optional[CharacterAssignments] = None
        self.blender: Optional[TemporalBlender] = None
        self._stages: dict[str, Callable[[_Packet], None]] = {
            "perceive": self._perceive, "render": self._render, "compose": self._compose}
        # Pipelined mode (start ... close): one queue before each stage and one for the results.
        self._threads: list[threading.Thread] = []
        self._queues: list[queue.Queue] = []
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None  # a stage's exception, raised to the consumer
        self._closed = False
        self._history: dict[str, collections.deque] = {k: collections.deque(maxlen=120)
                                                       for k in (*STAGES, "latency")}
        self._out_times: collections.deque = collections.deque(maxlen=240)
        self.frames_in = self.frames_out = self.dropped = 0

    # ------------------------------------------------------------------ setup
    def prepare(self) -> "Stream":
        """Load the student (or teacher), the face backend and the tracker; warm the engine up. Raises what the
        loaders raise (ValueError for no such character/student, EngineUnavailable, SDModelMissing, ...)."""
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
            # One mesh per face and frame: the averaged framings of a steady mesh cost ~20 ms per large face, and
            # the tracker and the temporal blend steady a stream already
            quick = replace(self.cfg.perception, steady=False)
            backend = get_face_backend(quick.face_backend, quick)
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
        getattr(self.renderer, "reset", lambda: None)()  # the teacher's light and palette carried across the clip

    def update(self, character: Optional[str] = None, assign: Optional[dict] = None, **factors) -> None:
        """Change the character, track assignments or factors (line, texture, color, warp; None = the
        character's default) from the next frame on. A character without a student raises ValueError here."""
        unknown = set(factors) - set(FACTORS)
        if unknown:
            raise ValueError(f"unknown factors {sorted(unknown)}")
        factors = {k: FACTOR.check(k, v, optional=True) for k, v in factors.items()}  # NaN, strings: ValueError
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
            # Faces are searched on a smaller copy (perceive_side): detection and the flow between detections cost
            # about half as much on a 1080p crowd, and faces stay large enough to find
            small, k = shrink(p.frame, self.config.perceive_side)
            p.faces = self.follower(small)
            if k < 1.0:
                p.faces = [f.scaled(1.0 / k) for f in p.faces]

    def _render(self, p: _Packet) -> None:
        with self._lock:
            character = self.character
            p.image, p.faces, p.person = self.renderer.render(p.frame, p.faces, character)

    def _compose(self, p: _Packet) -> None:
        tracks = self.tracker.update(p.faces or [], p.frame)  # the frame: cuts, and colours to re-identify
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
            tracks = [replace(t, face=t.face.scaled(s)) for t in tracks]
        p.tracks = tracks

    def _run_stage(self, name: str, p: _Packet) -> None:
        t0 = time.perf_counter()
        self._stages[name](p)
        ms = (time.perf_counter() - t0) * 1000.0
        p.timings[name] = ms
        self._history[name].append(ms)

    def _finish(self, p: _Packet) -> StreamResult:
        now = time.perf_counter()
        p.timings["latency"] = (now - p.t_in) * 1000.0
        self._history["latency"].append(p.timings["latency"])
        self._out_times.append(now)
        self.frames_out += 1
        return StreamResult(image=p.image, tracks=p.tracks, index=p.index, timings=dict(p.timings), meta=p.meta)

    def process(self, frame: np.ndarray, meta=None) -> StreamResult:
        """One frame through every stage in this thread (no queues, no drops): the lowest latency."""
        if not self._prepared:
            self.prepare()
        p = _Packet(self.frames_in, frame, meta)
        self.frames_in += 1
        for name in STAGES:
            self._run_stage(name, p)
        return self._finish(p)

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
        self._error = None
        self._closed = False

        def worker(i: int, name: str):
            q_in, q_out = self._queues[i], self._queues[i + 1]
            last = i == len(STAGES) - 1  # its packets leave as results
            while True:
                p = q_in.get()
                if p is _END or self._stop.is_set():
                    self._offer(q_out, _END, force=self._stop.is_set())
                    return
                try:
                    self._run_stage(name, p)
                    self._offer(q_out, self._finish(p) if last else p)
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                    self._error = exc
                    self._stop.set()
                    self._offer(q_out, _END, force=True)
                    return

        self._threads = [threading.Thread(target=worker, args=(i, s), name=f"stream-{s}", daemon=True)
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
        if self._error is not None:
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
                "detections": self.follower.detections if self.follower is not None else None,
                "engine": self.name if self._prepared else None}
