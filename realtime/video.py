"""Convert video files: every frame stylised, the audio kept.

    python -m realtime.video INPUT OUTPUT [--character NAME] [--assign TRACK=NAME ...] [--engine NAME | --teacher T]
        [--student DIR] [--line F --texture F --color F --warp F] [--no-temporal] [--no-contours]
        [--detect-every N] [--max-side PX] [--frames N] [--json]
    python -m realtime.video ../shared/data/videos/pedestrians_walking_faces_720p.mp4 out/walk.mp4 --json
    python -m realtime.video clips/ out/ --character pastel          # every video in clips/, one after another
    python -m realtime.video clips/ out/ --ray [--workers N]          # the same on Ray actors (realtime.batch)

Frames go through a realtime.stream.Stream: faces are detected every `--detect-every` frames and followed by
optical flow in between, each frame goes through the character's distilled student on `--engine`
(onnxruntime; faces warped toward the character's geometry first, the teacher's contour lines and face strokes
drawn over it after: the same step as `python -m studio stylize --engine`; `--no-contours` for face strokes
only, faster), and the result is blended with the previous one along the input's optical flow so the style does not
flicker (`--no-temporal` to see each frame on its own). These stages run in their own threads while this one
decodes and encodes. `--teacher classic|sd` runs the studio's Stylizer on each frame instead of a student: the
quality path, seconds per frame.

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
from typing import Callable, Iterable, Iterator, Optional

import cv2
import numpy as np

from studio.checks import DETECT_EVERY, FACTOR, FRAME_LIMIT, MAX_SIDE, WORKERS
from studio.config import ConfigError, load_config
from studio.io import atomic_path, error_line
from studio.types import FACTORS

from .batch import convert_on_ray
from .engines import EngineUnavailable
from .export import ParityError
from .stream import Stream, StreamConfig

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# crf 18 is near-transparent for flat cel images. "veryfast": at 1080p the encoder shares 2 cores with the stream,
# and "fast" held the whole conversion to 4.5 frames/s where "veryfast" gave 5.2 (docs/PERFORMANCE.md).
X264_OPTIONS = {"crf": "18", "preset": "veryfast"}


class VideoError(ValueError):
    """The input could not be used as a video (or the output not written); the message says why in one line."""


class VideoCancelled(VideoError):
    """`should_stop` said stop: the conversion ended between frames and no output was written."""


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
    students: dict = field(default_factory=dict)  # character -> which student drew it ("the shipped student", ...)
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


class _Writer:
    """The output file as the frames come: H.264 at the input's size and timestamps, the audio copied packet for
    packet, a phone clip's display rotation undone for the stylizer (`upright`) and redone on the way out."""

    def __init__(self, out, vin, ain: list, rate: Fraction, total: Optional[int], bar,
                 on_frame: Optional[Callable[[int, Optional[int]], None]]):
        import av

        self.out, self.rate, self.total, self.bar, self.on_frame = out, rate, total, bar, on_frame
        self._video_frame = av.VideoFrame
        self.vout = out.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
        # Every frame is stylised at the first frame's size (a stream whose resolution changes part way is scaled
        # to it). The output is 4:2:0, which every browser plays: it needs even sizes, so an odd side gets one
        # more pixel, a copy of the last row or column.
        self.width, self.height = vin.codec_context.width, vin.codec_context.height
        self.vout.width, self.vout.height = self.width + self.width % 2, self.height + self.height % 2
        self.vout.pix_fmt = "yuv420p"
        self.vout.time_base = self.vout.codec_context.time_base = vin.time_base  # frames keep their timestamps
        self._audio = {a.index: out.add_stream_from_template(a) for a in ain}
        self.turns, self.frames, self.faces, self.track_ids = 0, 0, 0, set()
        self._last_pts: Optional[int] = None
        self._pts_offset = 0

    def first_frame(self, frame) -> None:
        """The quarter turns that make the frames upright (their display rotation), copied onto the output."""
        rotation = int(getattr(frame, "rotation", 0) or 0)
        self.turns = round(rotation / 90) % 4
        if self.turns:
            self.vout.set_display_rotation(self.turns * 90 if self.turns < 3 else -90)

    def upright(self, frame) -> np.ndarray:
        """The decoded frame as RGB uint8 at the stream's size, turned upright: faces are found upright."""
        if (frame.width, frame.height) != (self.width, self.height):
            frame = frame.reformat(width=self.width, height=self.height)
        image = frame.to_ndarray(format="rgb24")
        return np.ascontiguousarray(np.rot90(image, self.turns)) if self.turns else image

    def audio(self, packet) -> None:
        packet.stream = self._audio[packet.stream.index]
        self.out.mux(packet)

    def write(self, res) -> None:
        """A stream result (its meta: the input frame's pts and time base) as the next output frame."""
        image = np.ascontiguousarray(np.rot90(res.image, -self.turns)) if self.turns else res.image
        if image.shape[:2] != (self.vout.height, self.vout.width):  # an odd side, made even
            image = np.pad(image, ((0, self.vout.height - image.shape[0]), (0, self.vout.width - image.shape[1]),
                                   (0, 0)), mode="edge")
        self.faces += len(res.tracks)
        self.track_ids.update(t.id for t in res.tracks if t.id is not None)
        new = self._video_frame.from_ndarray(image, format="rgb24")
        pts, time_base = res.meta
        seconds = Fraction(pts) * time_base if pts is not None and time_base else Fraction(self.frames) / self.rate
        at = int(round(seconds / self.vout.time_base)) + self._pts_offset
        if self._last_pts is not None and at <= self._last_pts:
            # Timestamps that go back (clips joined end to end restart at 0): the rest follows one frame later.
            step = max(1, int(round(1 / (self.rate * self.vout.time_base))))
            self._pts_offset += self._last_pts + step - at
            at = self._last_pts + step
        new.pts, new.time_base = at, self.vout.time_base
        self._last_pts = at
        self.out.mux(self.vout.encode(new))
        self.frames += 1
        self.bar.update(1)
        if self.on_frame is not None:
            self.on_frame(self.frames, self.total)

    def finish(self) -> None:
        self.out.mux(self.vout.encode(None))


def _decoded(inp, vin, ain: list, writer: _Writer, max_frames: Optional[int],
             should_stop: Optional[Callable[[], bool]]) -> Iterator[tuple[np.ndarray, tuple]]:
    """(upright RGB frame, (pts, time base)) for each decoded frame, in order; the audio packets met on the way
    go to `writer`. With `max_frames`, stops after that many frames, the audio cut at the same time."""
    sent, end, audio_done = 0, None, set()
    for packet in inp.demux(vin, *ain):
        if packet.stream.type == "audio":
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if end is not None and packet.pts is not None and packet.pts * packet.time_base >= end:
                audio_done.add(packet.stream.index)
            else:
                writer.audio(packet)
            continue
        if max_frames is None or sent < max_frames:
            for frame in packet.decode():  # the end-of-stream packet drains the decoder
                if max_frames is not None and sent >= max_frames:
                    break
                if should_stop is not None and should_stop():
                    raise VideoCancelled(f"stopped after {writer.frames} frames; nothing was written")
                if sent == 0:
                    writer.first_frame(frame)
                    if max_frames is not None:  # the audio ends where the preview does
                        end = (frame.time or 0.0) + max_frames / float(writer.rate)
                sent += 1
                yield writer.upright(frame), (frame.pts, frame.time_base)
        if max_frames is not None and sent >= max_frames and len(audio_done) == len(ain):
            break


def _pipelined(stream: Stream, frames: Iterator, writer: _Writer, should_stop: Optional[Callable[[], bool]]):
    """The frames through the stream's stage threads, written as the results come, then the rest drained."""
    stream.start()
    try:
        for image, meta in frames:
            stream.put(image, meta)
            for res in stream.ready():
                writer.write(res)
        stream.close()
        while (res := stream.get()) is not None:
            if should_stop is not None and should_stop():
                raise VideoCancelled(f"stopped after {writer.frames} frames; nothing was written")
            writer.write(res)
    finally:
        stream.stop()


def convert_video(src: str | os.PathLike, dst: str | os.PathLike, stream: Stream,
                  max_frames: Optional[int] = None, progress: bool = True,
                  on_frame: Optional[Callable[[int, Optional[int]], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None, pipelined: bool = True) -> VideoReport:
    """Stylise every frame of `src` into `dst` (.mp4/.mov/.mkv) through `stream` (realtime.stream.Stream, made
    with live=False so no frame is dropped), keeping the frame timestamps and the audio.

    This thread decodes, encodes and muxes; the stream's stages run in their own threads, a few frames behind
    (`pipelined=False`: every stage in this thread, one frame at a time, for comparison). `on_frame(done,
    total)` is called after each frame is written (total is None when the container does not say);
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
    if stream.config.live:
        raise VideoError("a live stream drops frames under load; convert files with StreamConfig(live=False)")
    t0 = time.perf_counter()
    inp = _open_input(src)
    stream.reset()
    try:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        ain = list(inp.streams.audio)
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        total = vin.frames or None
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        with atomic_path(dst) as tmp:  # renamed to dst only when every frame is written
            with av.open(str(tmp), "w", format=fmt) as out, \
                    tqdm(total=total, unit="frame", desc=src.name, file=sys.stderr, disable=not progress,
                         leave=False) as bar:
                writer = _Writer(out, vin, ain, rate, total, bar, on_frame)
                frames = _decoded(inp, vin, ain, writer, max_frames, should_stop)
                if pipelined:
                    _pipelined(stream, frames, writer, should_stop)
                else:
                    for image, meta in frames:
                        writer.write(stream.process(image, meta))
                writer.finish()
            if writer.frames == 0:
                raise VideoError("no decodable video frames")
    except av.FFmpegError as exc:
        raise VideoError(f"{exc.strerror or exc}") from None
    finally:
        inp.close()
    seconds = time.perf_counter() - t0
    engine = stream.renderer.engine
    n = writer.frames
    return VideoReport(input=str(src), output=str(dst), frames=n, fps=round(n / seconds, 3),
                       input_fps=round(float(rate), 3), width=writer.vout.width, height=writer.vout.height,
                       audio=bool(ain), engine=engine.name if engine else None,
                       device=engine.device if engine else None, teacher=stream.renderer.teacher,
                       character=stream.cast.default, assign={str(k): v for k, v in stream.cast.by_track.items()},
                       tracks=sorted(writer.track_ids), faces=writer.faces, seconds=round(seconds, 3),
                       students=stream.renderer.origins())


# ----------------------------------------------------------------------------------------------------- CLI
def parse_assignment(value: str) -> tuple[int, str]:
    """"0=noir" -> (0, "noir"); argparse.ArgumentTypeError (a clean error on the command line) for anything
    else."""
    track, sep, name = value.partition("=")
    if not sep or not track.strip().isdigit() or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not TRACK=NAME (e.g. 0=noir)")
    return int(track), name.strip()


def parse_assignments(text: Optional[str], known: Iterable[str]) -> dict[int, str]:
    """"0=noir, 2=pastel" (commas or semicolons) -> {0: "noir", 2: "pastel"}; ValueError, one line, for a malformed
    entry or a character not in `known`. The Video and Webcam tabs read their "Characters per person" box with it."""
    known = set(known)
    out: dict[int, str] = {}
    for item in (text or "").replace(";", ",").split(","):
        if not item.strip():
            continue
        try:
            track, name = parse_assignment(item.strip())
        except argparse.ArgumentTypeError as exc:  # the command line's parser wants this type
            raise ValueError(str(exc)) from None
        if name not in known:
            raise ValueError(f"Unknown character {name!r} for track {track}; choices: {', '.join(sorted(known))}.")
        out[track] = name
    return out


def add_drawing_args(ap: argparse.ArgumentParser, teacher_help: str) -> None:
    """The options that say what draws the frames, shared by this CLI and realtime.camera: --engine, --student,
    --teacher and the factor flags."""
    ap.add_argument("--engine", default=None, help="student engine: auto (default: the fastest that runs here, "
                                                   "onnxruntime-int8 on a CPU), onnxruntime, onnxruntime-int8, torch, "
                                                   "tensorrt")
    ap.add_argument("--student", help="student folder for --character (default: <data_dir>/students/<character>/ "
                                      "if you trained one, else the shipped students/<character>/)")
    ap.add_argument("--teacher", choices=("classic", "sd"), default=None, help=teacher_help)
    for name in FACTORS:
        ap.add_argument(f"--{name}", type=FACTOR.arg(f"--{name}"), default=None, help=f"{name} factor in [0, 1]")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m realtime.video", description=__doc__.split("\n\n")[0])
    ap.add_argument("input", metavar="INPUT", help="a video file, or a folder of videos")
    ap.add_argument("output", metavar="OUTPUT", help="the output video (.mp4, .mov, .mkv), or a folder")
    ap.add_argument("--character", default=None, help="character for everyone (default: the config's)")
    ap.add_argument("--assign", action="append", default=[], type=parse_assignment, metavar="TRACK=NAME",
                    help="draw the person of this face track as another character; repeatable")
    add_drawing_args(ap, "run this teacher on every frame instead of a student (slow)")
    ap.add_argument("--no-temporal", action="store_true",
                    help="no flow-guided blending between frames (each frame stylised on its own: flickers)")
    ap.add_argument("--no-contours", action="store_true",
                    help="the student draws no contour lines, only the face strokes (faster: 1080p conversion 5.3 "
                         "-> 6.6 fps on 2 cores)")
    ap.add_argument("--detect-every", type=DETECT_EVERY.arg("--detect-every"), default=5, metavar="N",
                    help="full face detection every N frames, faces followed by optical flow between (default 5; "
                         "1: detect on every frame)")
    ap.add_argument("--max-side", type=MAX_SIDE.arg("--max-side"), default=None, metavar="PX",
                    help="stylise larger frames at this long side and scale the result back up (faster; e.g. 1280 "
                         "for 1080p on a small CPU)")
    ap.add_argument("--frames", type=FRAME_LIMIT.arg("--frames"), default=None, metavar="N",
                    help="convert only the first N frames")
    ap.add_argument("--json", action="store_true", help="print one JSON report per input")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--config", help="studio config YAML (default configs/studio.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--ray", action="store_true",
                    help="convert the files on Ray actors, one stylizer each (realtime/batch.py; pip install ray)")
    ap.add_argument("--workers", type=WORKERS.arg("--workers"), default=None, metavar="N",
                    help="with --ray: number of actors (default: one per GPU, else by the CPU cores)")
    ap.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="with --ray: join this Ray cluster instead of starting Ray here")
    args = ap.parse_args(argv)
    if args.engine and args.teacher:
        ap.error("--engine and --teacher exclude each other: a student engine or a teacher")
    if (args.workers is not None or args.ray_address) and not args.ray:
        ap.error("--workers and --ray-address go with --ray")
    return args


# ------------------------------------------------------------------ the CLI's stream, its lines, its Ray actor
# What convert_video raises for a file that cannot be converted (VideoError, FFmpeg and file errors, a frame the
# stylizer refuses): that file is reported and the others go on.
CONVERT_ERRORS = (ValueError, OSError)


def build_stream(cfg, args: argparse.Namespace) -> Stream:
    """The Stream that the CLI options describe (character, --engine/--student or --teacher, factors, --assign,
    --detect-every, --no-temporal, --no-contours, --max-side), prepared: built once per process by the local
    mode and once per actor by the Ray mode."""
    config = StreamConfig(character=args.character, engine=args.engine or "auto", teacher=args.teacher,
                          student=args.student, line=args.line, texture=args.texture, color=args.color,
                          warp=args.warp, assign=dict(args.assign), detect_every=args.detect_every,
                          temporal=not args.no_temporal, contours=not args.no_contours, max_side=args.max_side,
                          live=False)
    return Stream(cfg, config).prepare()


def build_errors() -> tuple[type[BaseException], ...]:
    """What build_stream raises when the options cannot work here (unknown character, missing student or
    model, unavailable engine): one `error:` line and exit status 2, not a traceback."""
    from studio.stylize.sd_teacher import SDModelMissing

    return (ValueError, EngineUnavailable, ParityError, SDModelMissing, FileNotFoundError, ImportError)


def report_line(src, dst, report, as_json: bool) -> str:
    """The line printed when a file is done: its JSON report with `--json`, else a short summary."""
    if as_json:
        return json.dumps(asdict(report))
    return f"{src} -> {dst} ({report.frames} frames, {report.fps:.2f} frames/s, tracks {report.tracks})"


class VideoWorker:
    """One stream, built once; converts the files handed to it. Run as a Ray actor by realtime.batch.convert_on_ray.

    `cwd` is the driver's working folder (relative paths in the options and the config mean the same here);
    `threads` is this actor's CPU share, given to onnxruntime (unless TOONLAB_ORT_THREADS is set) and OpenCV."""

    def __init__(self, cfg, args: argparse.Namespace, cwd: str, threads: int):
        from .memory import settle_malloc

        settle_malloc()  # this actor's process only converts
        if os.path.isdir(cwd):
            os.chdir(cwd)
        os.environ.setdefault("TOONLAB_ORT_THREADS", str(threads))

        cv2.setNumThreads(threads)
        self.error: Optional[str] = None
        try:
            self.stylize = build_stream(cfg, args)
        except build_errors() as exc:
            self.error = str(exc)

    def ready(self) -> Optional[str]:
        """None when the stream is built, else why it could not be."""
        return self.error

    def convert(self, src: str, dst: str, max_frames: Optional[int]):
        """(report, None) for a converted file, (None, why) for one that could not be."""
        try:
            return convert_video(src, dst, self.stylize, max_frames=max_frames, progress=False), None
        except CONVERT_ERRORS as exc:
            return None, str(exc)


def video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def main(argv=None) -> int:
    args = parse_args(argv)
    from studio.io import unique_output

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
    if args.ray:  # the same stream and reports, one stream per Ray actor
        return convert_on_ray(jobs, VideoWorker, (cfg, args), args, report_line)
    try:
        stylize = build_stream(cfg, args)
    except build_errors() as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    failed = 0
    for s, d in jobs:
        try:
            report = convert_video(s, d, stylize, max_frames=args.frames, progress=not args.no_progress)
        except CONVERT_ERRORS as exc:  # VideoError, FFmpeg errors, a frame the stylizer refuses
            failed += 1
            print(error_line(s, exc), file=sys.stderr, flush=True)
            continue
        print(report_line(s, d, report, args.json), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    from .memory import settle_malloc

    settle_malloc()
    sys.exit(main())
