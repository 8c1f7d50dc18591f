"""Convert video files: every frame stylised, the audio kept.

    python -m realtime.video INPUT OUTPUT [--character NAME] [--assign TRACK=NAME ...] [--engine NAME | --teacher T]
        [--student DIR] [--line F --texture F --color F --warp F] [--frames N] [--json]
    python -m realtime.video ../shared/data/videos/pedestrians_walking_faces_720p.mp4 out/walk.mp4 --json
    python -m realtime.video clips/ out/ --character pastel          # every video in clips/, one after another

By default each frame goes through the character's distilled student on `--engine` (onnxruntime): faces are
found, warped toward the character's geometry, then the student draws the style (realtime.student, the same
step as `python -m studio stylize --engine`). `--teacher classic|sd` runs the studio's Stylizer on each frame
instead: the quality path, seconds per frame.

Faces are tracked across frames (studio.perception.tracking.FaceTracker), and `--assign 0=noir` draws the
person of track 0 as another character: that character is rendered too (its own student or teacher, its own
face geometry) and composited over the person's region, which is the person mask split between the faces in
the frame (each pixel goes to the nearest face, measured in face sizes and longer below the face, where the
body is). Where the person mask misses part of a body (crowds, people far away), that part keeps the default
character. Run once with `--json` to see the track ids: a face gets its id on its second frame, ids count from
0, and the same video with the same settings gives the same ids.

The output has the input's frame count, frame size and frame timing (each frame keeps its timestamp, so the
frame rate, variable rates and a video stream that starts after the audio are preserved); it is H.264
(libx264 in PyAV's bundled FFmpeg) in .mp4, .mov or .mkv. Audio streams are copied packet for packet, not
re-encoded. Subtitle and data streams are dropped. A phone clip's display rotation is undone for the stylizer
(faces are found upright) and kept on the output. Files are written to a temporary name and renamed when
complete. A file that cannot be read prints `error: <file>: <why>`, the other inputs are still converted, and
the exit status is 1. `--frames N` converts only the first N frames (a preview; the audio is cut at the same
time). `--json` prints one object per input: frames, fps (achieved), input_fps, width, height, audio, engine,
teacher, tracks (the ids seen), seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from studio.config import unit_interval

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
X264_OPTIONS = {"crf": "18", "preset": "fast"}  # near-transparent for flat cel images; ~2x faster than medium


class VideoError(ValueError):
    """The input could not be used as a video (or the output not written); the message says why in one line."""


class VideoCancelled(VideoError):
    """`should_stop` said stop: the conversion ended between frames and no output was written."""


# ----------------------------------------------------------------------------------------------- per person
def person_regions(shape: Sequence[int], boxes: Sequence, person: np.ndarray, scale: int = 4) -> list[np.ndarray]:
    """One soft mask (H, W) float32 per face box: the part of the person mask that belongs to that face's person.

    Each pixel goes to the nearest face in face units (a face width sideways, a face height above, three face
    heights below: the body hangs under the face), within 2.5 of those units (about the shoulders sideways and
    the feet below). The face's own ellipse is always in, as the person mask can miss a face. Computed at
    1/`scale` resolution, feathered, and resized back."""
    import cv2

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


class FrameRenderer(Protocol):
    """What FrameStylizer needs from a path (StudentFrames, TeacherFrames): `engine` (or None) and `teacher` (or
    None) name it in the report."""

    engine: object
    teacher: Optional[str]

    def prepare(self, characters: Sequence[str]) -> None:
        """Load what these characters need now, so a missing one fails before the first frame."""

    def first(self, frame: np.ndarray, character: str) -> tuple[np.ndarray, list, Optional[np.ndarray]]:
        """The frame drawn as `character`, the faces found in it, and its person mask when already known."""

    def render(self, frame: np.ndarray, faces: list, character: str) -> np.ndarray:
        """The frame drawn as another character (an assigned track's)."""

    def person(self, frame: np.ndarray, faces: list) -> np.ndarray:
        """The soft person mask (H, W), when `first` did not give it."""


class StudentFrames:
    """The realtime path: each needed character's student, faces from the face backend."""

    def __init__(self, cfg, engine: str, student: Optional[str], factors: dict, default: str):
        from studio.perception.faces import get_face_backend

        from .student import StudentStylizer

        self.cfg, self.engine_name, self.factors = cfg, engine, factors
        self._students = {default: StudentStylizer(cfg, default, engine, student, **factors)}
        self.faces = get_face_backend(cfg.perception.face_backend, cfg.perception)
        self.engine = self._students[default].engine
        self.teacher = None

    def student(self, character: str):
        if character not in self._students:  # an assigned character: its own student from students/<name>/
            from .student import StudentStylizer

            self._students[character] = StudentStylizer(self.cfg, character, self.engine_name, None, **self.factors)
        return self._students[character]

    def prepare(self, characters: Sequence[str]) -> None:
        for c in characters:
            self.student(c)

    def first(self, frame: np.ndarray, character: str):
        faces = self.faces.detect(frame)
        return self.student(character)(frame, faces), faces, None

    def render(self, frame: np.ndarray, faces, character: str) -> np.ndarray:
        return self.student(character)(frame, faces)

    def person(self, frame: np.ndarray, faces) -> np.ndarray:
        from studio.perception import segment_person

        return segment_person(frame, faces)


class TeacherFrames:
    """The quality path: the studio's Stylizer on each frame (it finds faces and people itself)."""

    def __init__(self, cfg, teacher: str, factors: dict, default: str):
        from studio import StylizeParams, Stylizer

        self.stylizer = Stylizer(cfg)
        self.teacher, self.engine = teacher, None
        self._params = lambda character: StylizeParams(character=character, teacher=teacher, **factors)
        self.prepare([default])

    def prepare(self, characters: Sequence[str]) -> None:
        for c in characters:
            self.stylizer.prepare(self._params(c))

    def first(self, frame: np.ndarray, character: str):
        result = self.stylizer(frame, self._params(character))
        return result.image, result.faces, result.perception.person

    def render(self, frame: np.ndarray, faces, character: str) -> np.ndarray:
        return self.stylizer(frame, self._params(character)).image

    def person(self, frame: np.ndarray, faces) -> np.ndarray:  # not called: `first` gives the teacher's mask
        from studio.perception import segment_person

        return segment_person(frame, faces)


class FrameStylizer:
    """Frame in, stylised frame out, with the faces tracked: everyone drawn as `default`, assigned tracks redrawn
    as their own character and composited over their person region. `reset()` between videos."""

    def __init__(self, frames: FrameRenderer, default: str, assign: dict[int, str]):
        from studio.perception.tracking import CharacterAssignments, FaceTracker

        self.frames, self.tracker = frames, FaceTracker()
        self.cast = CharacterAssignments(default=default, by_track=dict(assign))
        frames.prepare(sorted(set(assign.values())))  # a missing student or character fails now, not mid-video

    def reset(self) -> None:
        self.tracker.reset()

    def __call__(self, frame: np.ndarray):
        out, faces, person = self.frames.first(frame, self.cast.default)
        tracks = self.tracker.update(faces)
        redraw: dict[str, list[int]] = {}
        for i, t in enumerate(tracks):
            character = self.cast.character_for(t.id)
            if character != self.cast.default:
                redraw.setdefault(character, []).append(i)
        if redraw:
            if person is None:
                person = self.frames.person(frame, faces)
            regions = person_regions(frame.shape, [t.box for t in tracks], person)
            blended = out.astype(np.float32)
            for character, idx in redraw.items():
                m = np.clip(sum(regions[i] for i in idx), 0.0, 1.0)[..., None]
                other = self.frames.render(frame, faces, character).astype(np.float32)
                blended = blended * (1.0 - m) + other * m
            out = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out, tracks


# --------------------------------------------------------------------------------------------------- files
@dataclass
class VideoReport:
    input: str
    output: str
    frames: int
    fps: float  # frames converted per second of wall time, end to end (decode, faces, stylise, encode)
    input_fps: float
    width: int
    height: int
    audio: bool  # an audio stream was copied into the output
    engine: Optional[str]
    device: Optional[str]
    teacher: Optional[str]
    character: str
    assign: dict = field(default_factory=dict)
    tracks: list = field(default_factory=list)  # the track ids seen
    faces: int = 0  # faces detected, summed over the frames
    seconds: float = 0.0


def _open_input(src: Path):
    import av

    if not src.exists():
        raise VideoError("no such file")
    if src.is_dir():
        raise VideoError("is a folder, not a video")
    if src.stat().st_size == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        container = av.open(str(src))
    except av.FFmpegError as exc:
        raise VideoError(f"not a readable video ({exc.strerror or exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("no video stream")
    return container


def _first_frame(frame, vout) -> int:
    """The quarter turns that make the frames upright (their display rotation), copied onto the output."""
    rotation = int(getattr(frame, "rotation", 0) or 0)
    turns = round(rotation / 90) % 4
    if turns:
        vout.set_display_rotation(turns * 90 if turns < 3 else -90)
    return turns


def convert_video(src: str | os.PathLike, dst: str | os.PathLike, stylize: FrameStylizer,
                  max_frames: Optional[int] = None, progress: bool = True,
                  on_frame: Optional[Callable[[int, Optional[int]], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None) -> VideoReport:
    """Stylise every frame of `src` into `dst` (.mp4/.mov/.mkv), keeping the frame timestamps and the audio.

    `on_frame(done, total)` is called after each frame (total is None when the container does not say);
    `should_stop()` is asked before each frame, and when it says stop, VideoCancelled is raised and nothing is
    left at `dst` (the partial temporary file is removed)."""
    import av
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    fmt = OUTPUT_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise VideoError(f"{dst}: output must be one of {', '.join(OUTPUT_FORMATS)}")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise VideoError("the output would overwrite the input")
    t0 = time.perf_counter()
    inp = _open_input(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".tmp-{dst.name}")
    stylize.reset()
    n, faces_seen, track_ids, end, turns = 0, 0, set(), None, 0
    try:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        ain = list(inp.streams.audio)
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        with av.open(str(tmp), "w", format=fmt) as out:
            vout = out.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            # 4:2:0 needs even sizes; odd-sized inputs keep their size in 4:4:4.
            vout.pix_fmt = "yuv420p" if vout.width % 2 == 0 and vout.height % 2 == 0 else "yuv444p"
            vout.time_base = vout.codec_context.time_base = vin.time_base  # frames keep their own timestamps
            aout = {a.index: out.add_stream_from_template(a) for a in ain}
            total = vin.frames or None
            if max_frames is not None:
                total = min(total or max_frames, max_frames)
            audio_done: set[int] = set()  # audio streams past the preview's end (--frames)
            bar = tqdm(total=total, unit="frame", desc=src.name, file=sys.stderr, disable=not progress, leave=False)
            try:
                for packet in inp.demux(vin, *ain):
                    if packet.stream.type == "audio":
                        if packet.dts is None:  # the demuxer's end-of-stream marker
                            continue
                        if end is not None and packet.pts is not None and packet.pts * packet.time_base >= end:
                            audio_done.add(packet.stream.index)
                        else:
                            packet.stream = aout[packet.stream.index]
                            out.mux(packet)
                    elif max_frames is None or n < max_frames:
                        for frame in packet.decode():  # the end-of-stream packet drains the decoder
                            if max_frames is not None and n >= max_frames:
                                break
                            if should_stop is not None and should_stop():
                                raise VideoCancelled(f"stopped after {n} frames; nothing was written")
                            if n == 0:
                                turns = _first_frame(frame, vout)
                                if max_frames is not None:  # cut the audio where the preview ends
                                    end = (frame.time or 0.0) + max_frames / float(rate)
                            image = frame.to_ndarray(format="rgb24")
                            # Faces are found upright: a phone clip's display rotation is undone for the
                            # stylizer and redone after, and the output keeps the same display rotation.
                            image, tracks = stylize(np.ascontiguousarray(np.rot90(image, turns)) if turns else image)
                            if turns:
                                image = np.ascontiguousarray(np.rot90(image, -turns))
                            faces_seen += len(tracks)
                            track_ids.update(t.id for t in tracks if t.id is not None)
                            new = av.VideoFrame.from_ndarray(image, format="rgb24")
                            if frame.pts is not None:
                                new.pts, new.time_base = frame.pts, frame.time_base
                            else:
                                new.pts, new.time_base = n, 1 / rate
                            out.mux(vout.encode(new))
                            n += 1
                            bar.update(1)
                            if on_frame is not None:
                                on_frame(n, total)
                    if max_frames is not None and n >= max_frames and len(audio_done) == len(ain):
                        break
                out.mux(vout.encode(None))
            finally:
                bar.close()
        if n == 0:
            raise VideoError("no decodable video frames")
        os.replace(tmp, dst)
    except av.FFmpegError as exc:
        raise VideoError(f"{exc.strerror or exc}") from None
    finally:
        inp.close()
        if tmp.exists():
            tmp.unlink()
    seconds = time.perf_counter() - t0
    engine = stylize.frames.engine
    return VideoReport(input=str(src), output=str(dst), frames=n, fps=round(n / seconds, 3),
                       input_fps=round(float(rate), 3), width=vout.width, height=vout.height, audio=bool(ain),
                       engine=engine.name if engine else None, device=engine.device if engine else None,
                       teacher=stylize.frames.teacher, character=stylize.cast.default,
                       assign={str(k): v for k, v in stylize.cast.by_track.items()}, tracks=sorted(track_ids),
                       faces=faces_seen, seconds=round(seconds, 3))


# ----------------------------------------------------------------------------------------------------- CLI
def _assignment(value: str) -> tuple[int, str]:
    track, sep, name = value.partition("=")
    if not sep or not track.strip().isdigit() or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not TRACK=NAME (e.g. 0=noir)")
    return int(track), name.strip()


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m realtime.video", description=__doc__.split("\n\n")[0])
    ap.add_argument("input", metavar="INPUT", help="a video file, or a folder of videos")
    ap.add_argument("output", metavar="OUTPUT", help="the output video (.mp4, .mov, .mkv), or a folder")
    ap.add_argument("--character", default=None, help="character for everyone (default: the config's)")
    ap.add_argument("--assign", action="append", default=[], type=_assignment, metavar="TRACK=NAME",
                    help="draw the person of this face track as another character; repeatable")
    ap.add_argument("--engine", default=None, help="student engine: torch, onnxruntime (default), tensorrt")
    ap.add_argument("--student", help="student folder for --character (default: students/<character>/ or "
                                      "<data_dir>/students/<character>/)")
    ap.add_argument("--teacher", choices=("classic", "sd"), default=None,
                    help="run this teacher on every frame instead of a student (slow)")
    for name in ("line", "texture", "color", "warp"):
        ap.add_argument(f"--{name}", type=unit_interval, default=None, help=f"{name} factor in [0, 1]")
    ap.add_argument("--frames", type=int, default=None, metavar="N", help="convert only the first N frames")
    ap.add_argument("--json", action="store_true", help="print one JSON report per input")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--config", help="studio config YAML (default configs/studio.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)
    if args.engine and args.teacher:
        ap.error("--engine and --teacher exclude each other: a student engine or a teacher")
    if args.frames is not None and args.frames < 1:
        ap.error("--frames must be at least 1")
    return args


def video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def main(argv=None) -> int:
    args = parse_args(argv)
    from studio.config import ConfigError, load_config
    from studio.io import unique_output
    from studio.stylize.sd_teacher import SDModelMissing

    from .engines import EngineUnavailable
    from .export import ParityError

    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    src, dst = Path(args.input), Path(args.output)
    if src.is_dir():
        jobs, taken = [], set()
        for f in video_files(src):
            jobs.append((f, unique_output(dst, f, taken, ".mp4", "video")))
        if not jobs:
            print(f"error: {src}: no video files ({', '.join(VIDEO_SUFFIXES)})", file=sys.stderr)
            return 1
    else:
        into_folder = dst.is_dir() or args.output.endswith(("/", os.sep)) or not dst.suffix
        jobs = [(src, dst / f"{src.stem or 'video'}.mp4" if into_folder else dst)]
    character = args.character or cfg.default_character
    factors = dict(line=args.line, texture=args.texture, color=args.color, warp=args.warp)
    try:
        if args.teacher:
            frames = TeacherFrames(cfg, args.teacher, factors, character)
        else:
            frames = StudentFrames(cfg, args.engine or "onnxruntime", args.student, factors, character)
        stylize = FrameStylizer(frames, character, dict(args.assign))
    except (ValueError, EngineUnavailable, ParityError, SDModelMissing, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    failed = 0
    for s, d in jobs:
        try:
            report = convert_video(s, d, stylize, max_frames=args.frames, progress=not args.no_progress)
        except (ValueError, OSError) as exc:  # VideoError, FFmpeg errors, a frame the stylizer refuses
            failed += 1
            print(f"error: {s}: {exc}".replace("\n", " "), file=sys.stderr, flush=True)
            continue
        if args.json:
            print(json.dumps(asdict(report)), flush=True)
        else:
            print(f"{s} -> {d} ({report.frames} frames, {report.fps:.2f} frames/s, tracks {report.tracks})",
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
