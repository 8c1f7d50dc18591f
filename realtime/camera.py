"""A local camera through the realtime stream: a preview window, a virtual camera, a recording, or a four-cut booth.

    python -m realtime.camera [--device N | --input FILE] [--character NAME] [--engine auto | --teacher classic]
        [--line F --texture F --color F --warp F] [--virtual-cam] [--out FILE.mp4] [--no-window] [--frames N]
    python -m realtime.camera --virtual-cam --character pastel       # a webtoon camera for Zoom, Meet, OBS ...
    python -m realtime.camera --input ../shared/data/videos/child_glasses_chalkboard_720p.mp4 --frames 50 \\
        --out /tmp/camera.mp4                                         # headless: a clip stands in for the camera
    python -m realtime.camera --booth [--layout strip|grid] [--caption TEXT ...] [--title TEXT] [--countdown S] \\
        --out booth.png                                               # 네 컷 사진: four shots, one page

Each frame is stylised the way the studio's Webcam tab does it: downscaled to fit 1280x720
(realtime.live.bound_size), then a realtime.stream.Stream (live=True: the character's student on `--engine`, faces
found every few frames and followed between, blended along the optical flow against flicker), one frame at a time
in this thread (`Stream.process`: the lowest latency). The result goes to a window (`cv2.imshow`, when there is a
display and an OpenCV with window support; q or Esc closes it), to a virtual camera (`--virtual-cam`, pyvirtualcam:
v4l2loopback on Linux, OBS Virtual Camera on Windows and macOS) and/or to an H.264 file (`--out FILE.mp4`, written
under a temporary name and renamed when stopped). One line on stderr, rewritten in place, gives the frames per
second (rolling, as the Webcam tab's readout: realtime.live.rolling_fps), the time per frame and the people in the
picture. `--frames N` stops after N frames; Ctrl-C stops too, cleanly: the camera is released, the stream stopped
and the recording so far kept.

`--input FILE` reads a video file instead of the camera, at the file's own frame rate (never faster, every frame in
order; a recording of it keeps that rate), so the loop can be tried, tested and demonstrated without a camera. The
loop itself takes any iterable of RGB frames (`run_live`, `take_shots`).

`--booth` takes four stylised shots, each after a countdown of `--countdown` seconds (printed, and drawn on the
preview window when there is one), and lays them out as a Korean four-cut photo strip (studio.booth: `strip` 1x4 or
`grid` 2x2, a caption under each panel, a title footer: today's date unless `--title` says otherwise), written
atomically (PNG, or JPEG/WebP by the suffix); each panel's crop is kept on the faces in its shot. Each shot is
stylised on its own (faces found afresh, no blending with the preview frames). In booth mode a clip given as
`--input` starts again from its beginning when it ends, as a camera would go on.

A missing camera or file, an unknown character, a character without a student, no virtual camera device: one
`error:` line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, TextIO

import cv2
import numpy as np

from studio.booth import LAYOUTS, compose_booth, focus_point, missing_glyphs
from studio.characters import list_characters
from studio.checks import FRAME_LIMIT, Rule
from studio.config import ConfigError, load_config
from studio.io import atomic_path, save_image
from studio.types import FACTORS

from . import live
from .stream import Stream, StreamConfig, StreamResult
from .video import OUTPUT_FORMATS, X264_OPTIONS, add_drawing_args, build_errors

DEVICE = Rule(0, 99, integer=True)  # cv2.VideoCapture(N): /dev/videoN on Linux
COUNTDOWN = Rule(0.0, 60.0)  # seconds before each booth shot
BOOTH_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
STATUS_EVERY = 0.25  # s between rewrites of the fps line
WINDOW = "Toonlab camera"
MS = Fraction(1, 1000)  # the recording's time base
VIRTUAL_CAM_HELP = ("on Linux: sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback devices=1 "
                    "exclusive_caps=1 card_label=Toonlab; on Windows or macOS: install OBS Studio and start its "
                    "Virtual Camera once")


class CameraError(ValueError):
    """A camera, file or output that cannot be used; the message says why in one line."""


# --------------------------------------------------------------------------------------------------- sources
class _Frames:
    """Frames from cv2.VideoCapture as RGB uint8, the first one read on opening (so a dead source fails there)."""

    def __init__(self, cap, name: str, first: np.ndarray):
        self.cap, self.name, self._first = cap, name, first
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self.size = (first.shape[1], first.shape[0])

    def close(self) -> None:
        self.cap.release()


class CameraFrames(_Frames):
    """A local camera. Only the newest frames are wanted: its driver buffer is kept to one frame where it can be."""

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        failures = 0
        while True:
            ok, bgr = self.cap.read()
            if not ok:
                failures += 1
                if failures >= 20:  # about a second: unplugged, or taken by another program
                    raise CameraError(f"{self.name} stopped sending frames")
                time.sleep(0.05)
                continue
            failures = 0
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class FileFrames(_Frames):
    """A video file standing in for a camera: every frame in order, no faster than the file's frame rate;
    `loop` starts it again at its end (a camera does not end)."""

    loop = False

    def __iter__(self) -> Iterator[np.ndarray]:
        t0, i = time.monotonic(), 0
        pending, self._first = self._first, None
        while True:
            if pending is None:
                ok, bgr = self.cap.read()
                if not ok and self.loop and i > 0:
                    self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, bgr = self.cap.read()
                if not ok:
                    return
                pending = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            wait = t0 + i / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            i += 1
            frame, pending = pending, None
            yield frame


def open_camera(device: int) -> CameraFrames:
    """Camera `device` opened and its first frame read; CameraError (one line) when there is none or it gives
    nothing."""
    name = f"camera {device}"
    if sys.platform.startswith("linux"):
        path = Path(f"/dev/video{device}")
        if not path.exists():
            here = sorted(str(p) for p in Path("/dev").glob("video*"))
            raise CameraError(f"no camera at {path} (cameras here: {', '.join(here) or 'none'}); "
                              "--input FILE uses a video file instead")
        name = f"camera {device} ({path})"
    cap = cv2.VideoCapture(device)
    if not cap.isOpened():
        raise CameraError(f"{name} could not be opened (in use by another program, or no permission)")
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    ok, bgr = cap.read()
    if not ok:
        cap.release()
        raise CameraError(f"{name} gave no frame")
    return CameraFrames(cap, name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def open_file(path: str | os.PathLike, loop: bool = False) -> FileFrames:
    """A video file as a camera (FileFrames); CameraError (one line) when it is missing or not a video."""
    p = Path(path)
    if not p.exists():
        raise CameraError(f"{p}: no such file")
    if p.is_dir():
        raise CameraError(f"{p}: is a folder, not a video")
    cap = cv2.VideoCapture(str(p))
    ok, bgr = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise CameraError(f"{p}: not a readable video")
    frames = FileFrames(cap, str(p), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    frames.loop = loop
    return frames


# --------------------------------------------------------------------------------------------------- sinks
class Window:
    """The preview window (cv2.imshow). `show` says False when it was closed, or q or Esc pressed."""

    def __init__(self, name: str = WINDOW):
        self.name = name

    def show(self, image: np.ndarray, wait_ms: int = 1) -> bool:
        cv2.imshow(self.name, np.ascontiguousarray(image[..., ::-1]))
        key = cv2.waitKey(wait_ms) & 0xFF
        if key in (27, ord("q")):
            return False
        return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.name)


def open_window(name: str = WINDOW) -> tuple[Optional[Window], Optional[str]]:
    """(the window, None), or (None, why there can be none here)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None, "no display here (DISPLAY is not set)"
    try:
        cv2.namedWindow(name, cv2.WINDOW_NORMAL)
    except cv2.error:
        return None, "this OpenCV has no window support (the headless build)"
    return Window(name), None


def open_virtual_cam(width: int, height: int, fps: float):
    """A pyvirtualcam.Camera taking RGB frames of this size; CameraError saying what to install when the package
    or a virtual camera device is missing."""
    try:
        import pyvirtualcam
    except ImportError:
        raise CameraError("--virtual-cam needs pyvirtualcam: pip install pyvirtualcam==0.15.0") from None
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB)
    except RuntimeError as exc:
        why = " ".join(str(exc).split(". ")[0].split())  # pyvirtualcam's first sentence: which backend, which device
        raise CameraError(f"no virtual camera device ({why}); {VIRTUAL_CAM_HELP}") from None


class Recorder:
    """Stylised frames into an H.264 file (.mp4, .mov, .mkv) at `path`'s temporary name; `finish` flushes the
    encoder. Timestamps: frame i at i / fps when `constant_rate` (a file's frames, none dropped), else the wall
    clock since the first frame (a camera: the recording plays at the speed it was filmed)."""

    def __init__(self, path: Path, fps: float, constant_rate: bool):
        import av

        fmt = OUTPUT_FORMATS[path.suffix.lower()]
        self.container = av.open(str(path), "w", format=fmt)
        self.rate = Fraction(round(fps * 1000), 1000)
        self.constant_rate = constant_rate
        self._video_frame = av.VideoFrame
        self.stream = None
        self.frames = 0
        self._t0: Optional[float] = None
        self._last = -1

    def write(self, image: np.ndarray) -> None:
        if self.stream is None:  # sized by the first frame; 4:2:0 wants even sides
            h, w = image.shape[:2]
            self.stream = self.container.add_stream("libx264", rate=self.rate, options=dict(X264_OPTIONS))
            self.stream.width, self.stream.height = w + w % 2, h + h % 2
            self.stream.pix_fmt = "yuv420p"
            self.stream.time_base = self.stream.codec_context.time_base = MS
            self._t0 = time.monotonic()
        if image.shape[:2] != (self.stream.height, self.stream.width):
            image = np.pad(image, ((0, self.stream.height - image.shape[0]), (0, self.stream.width - image.shape[1]),
                                   (0, 0)), mode="edge")
        seconds = self.frames / self.rate if self.constant_rate else time.monotonic() - self._t0
        pts = max(self._last + 1, int(round(seconds * 1000)))
        frame = self._video_frame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = pts, MS  # not the stream's: the muxer changes that when it starts
        self._last = pts
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def finish(self) -> None:
        if self.stream is not None:
            self.container.mux(self.stream.encode(None))

    def close(self) -> None:
        self.container.close()


# --------------------------------------------------------------------------------------------------- status
class FpsLine:
    """The one status line, rewritten in place with \\r: rolling frames/s, ms per frame, people, frames so far."""

    def __init__(self, out: TextIO = sys.stderr, engine: str = "", every: float = STATUS_EVERY):
        self.out, self.engine, self.every = out, engine, every
        self.times: list[float] = []
        self._shown, self._width = 0.0, 0

    def update(self, frames: int, people: int, ms: float, force: bool = False) -> None:
        now = time.monotonic()
        self.times = [t for t in self.times if t >= now - 3.0] + [now]
        if not force and now - self._shown < self.every:
            return
        self._shown = now
        fps = live.rolling_fps(self.times, now)
        rate = f"{fps:5.1f} fps" if fps is not None else "measuring fps…"
        line = (f"{rate} · {ms:4.0f} ms/frame · {people} {'person' if people == 1 else 'people'} · frame {frames}"
                + (f" · {self.engine}" if self.engine else ""))
        self.out.write("\r" + line.ljust(self._width))
        self.out.flush()
        self._width = len(line)

    def end(self) -> None:
        if self._width:
            self.out.write("\n")
            self.out.flush()


# --------------------------------------------------------------------------------------------------- loops
def run_live(stream: Stream, frames: Iterable[np.ndarray], sinks: Iterable[Callable[[np.ndarray], Optional[bool]]],
             max_frames: Optional[int] = None, status: Optional[FpsLine] = None) -> int:
    """Each frame of `frames` (RGB uint8) through `stream.process`, the result to every sink (a sink that returns
    False, a closed window, ends the loop); stops after `max_frames`, at the end of `frames`, or at Ctrl-C. Returns
    the frames done. The caller releases the source and stops the stream."""
    done = 0
    try:
        for frame in frames:
            t0 = time.perf_counter()
            res = stream.process(live.bound_size(frame))
            done += 1
            if status is not None:
                status.update(done, len(res.tracks), (time.perf_counter() - t0) * 1000.0, force=done == max_frames)
            if any([sink(res.image) is False for sink in sinks]):  # a list: every sink gets the frame
                break
            if max_frames is not None and done >= max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if status is not None:
            status.end()
    return done


def take_shots(stream: Stream, frames: Iterable[np.ndarray], countdown: float, shots: int = 4,
               window: Optional[Window] = None, say: Callable[[str], None] = print) -> list[StreamResult]:
    """`shots` stylised frames (stream results: the image and its face tracks), each taken `countdown` seconds
    after the previous one, the seconds left said through `say` (and drawn on the window's preview). CameraError
    when `frames` ends first, or the window is closed."""
    taken: list[StreamResult] = []
    it = iter(frames)
    for k in range(1, shots + 1):
        end, said = time.monotonic() + countdown, None
        while True:
            frame = next(it, None)
            if frame is None:
                raise CameraError(f"the input ended after {k - 1} of {shots} shots")
            frame = live.bound_size(frame)
            left = end - time.monotonic()
            if left <= 0:
                break
            second = math.ceil(left)
            if second != said:
                say(f"shot {k}/{shots} in {second}…")
                said = second
            if window is not None and not window.show(countdown_overlay(stream.process(frame).image, second)):
                raise CameraError(f"the window was closed after {k - 1} of {shots} shots")
        stream.reset()  # each shot on its own: faces found afresh, no blending with the preview frames before it
        taken.append(stream.process(frame))
        say(f"shot {k}/{shots}: taken")
        if window is not None and not window.show(taken[-1].image, wait_ms=400):
            raise CameraError(f"the window was closed after {k} of {shots} shots")
    return taken


def countdown_overlay(image: np.ndarray, second: int) -> np.ndarray:
    """The preview with the seconds left written large in its middle (a copy)."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(1.0, min(h, w) / 120.0)
    text = str(second)
    thick = max(2, round(scale * 2))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thick)
    org = ((w - tw) // 2, (h + th) // 2)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, (0, 0, 0), thick * 3, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


# ----------------------------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m realtime.camera", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--device", type=DEVICE.arg("--device"), default=None, metavar="N",
                     help="camera number (cv2.VideoCapture(N), /dev/videoN on Linux; default 0)")
    src.add_argument("--input", metavar="FILE", help="a video file standing in for the camera (tests, demos)")
    ap.add_argument("--character", default=None, help="character (default: the config's)")
    add_drawing_args(ap, "draw every frame with this teacher instead of a student (the quality path: seconds a frame)")
    ap.add_argument("--virtual-cam", action="store_true",
                    help="publish the frames as a virtual camera (pyvirtualcam: v4l2loopback or OBS Virtual Camera)")
    ap.add_argument("--out", metavar="FILE", help="record to this video (.mp4, .mov, .mkv); with --booth: the page "
                                                  "(.png, .jpg, .webp)")
    ap.add_argument("--no-window", action="store_true", help="no preview window")
    ap.add_argument("--frames", type=FRAME_LIMIT.arg("--frames"), default=None, metavar="N",
                    help="stop after N frames (default: at Ctrl-C, q in the window, or the end of --input)")
    booth = ap.add_argument_group("four-cut booth (--booth)")
    booth.add_argument("--booth", action="store_true", help="take four shots and write a four-cut page to --out")
    booth.add_argument("--layout", choices=tuple(LAYOUTS), default="strip", help="strip: 1x4; grid: 2x2")
    booth.add_argument("--caption", nargs="+", action="extend", default=None, metavar="TEXT",
                       help="a caption under each panel, in order (up to 4)")
    booth.add_argument("--title", default=None, help="the footer's text (default: today's date; '' for none)")
    booth.add_argument("--countdown", type=COUNTDOWN.arg("--countdown"), default=3.0, metavar="S",
                       help="seconds before each shot (default 3)")
    ap.add_argument("--config", help="studio config YAML (default configs/studio.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)
    if args.teacher and (args.engine or args.student):
        ap.error("--teacher excludes --engine and --student: a teacher or a student")
    if args.booth:
        if not args.out or Path(args.out).suffix.lower() not in BOOTH_SUFFIXES:
            ap.error(f"--booth needs --out FILE ({', '.join(BOOTH_SUFFIXES)})")
        if args.virtual_cam or args.frames is not None:
            ap.error("--virtual-cam and --frames do not go with --booth")
        if args.caption and len(args.caption) > 4:
            ap.error(f"at most 4 captions (one per panel), got {len(args.caption)}")
    else:
        if args.out and Path(args.out).suffix.lower() not in OUTPUT_FORMATS:
            ap.error(f"--out must be a video ({', '.join(OUTPUT_FORMATS)}); a picture goes with --booth")
        if args.caption is not None or args.title is not None:
            ap.error("--caption and --title go with --booth")
    return args


def _error(text) -> int:
    print(f"error: {' '.join(str(text).split())}", file=sys.stderr, flush=True)
    return 2


def build_stream(cfg, args: argparse.Namespace) -> Stream:
    """The Webcam tab's stream (realtime.live.open_stream) with the command line's engine, student or teacher."""
    factors = {name: getattr(args, name) for name in FACTORS}
    config = StreamConfig(character=args.character, engine=args.engine or live.ENGINE, teacher=args.teacher,
                          student=args.student, live=True, **factors)
    return Stream(cfg, config).prepare()


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # during the setup (the loops take Ctrl-C themselves)
        print("stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    # 1. the settings: config, character and its student (before any camera is touched)
    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as exc:
        return _error(exc)
    args.character = args.character or cfg.default_character
    names = [c.name for c in list_characters(cfg)]
    if args.character not in names:
        return _error(f"unknown character {args.character!r}; choices: {', '.join(names)}")
    if not (args.student or args.teacher) and (why := live.missing_student(cfg, args.character)):
        return _error(why)
    # 2. the frames' source, the window and the virtual camera
    try:
        source = open_file(args.input, loop=args.booth) if args.input else open_camera(args.device or 0)
    except CameraError as exc:
        return _error(exc)
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        sinks: list[Callable[[np.ndarray], Optional[bool]]] = []
        if args.virtual_cam:
            h, w = live.bound_size(np.zeros((source.size[1], source.size[0], 3), np.uint8)).shape[:2]
            try:
                cam = stack.enter_context(open_virtual_cam(w, h, source.fps))
            except CameraError as exc:
                return _error(exc)
            print(f"virtual camera: {cam.device} ({w}x{h}, {source.fps:g} fps)", file=sys.stderr)
            sinks.append(cam.send)
        window, why = (None, "--no-window") if args.no_window else open_window()
        if window is not None:
            stack.callback(window.close)
        elif not (args.booth or args.out or args.virtual_cam):
            return _error(f"nothing to show the frames on: {why}; use --out FILE.mp4 or --virtual-cam")
        elif not args.no_window:
            print(f"no preview window: {why}", file=sys.stderr)
        # 3. the stream (the student loads and warms up here)
        try:
            stream = build_stream(cfg, args)
        except build_errors() as exc:
            return _error(exc)
        stack.callback(stream.stop)
        print(f"{source.name} -> {args.character} on {stream.name}" + ("" if args.booth else " (Ctrl-C stops)"),
              file=sys.stderr, flush=True)
        if args.booth:
            return _booth(stream, source, window, args)
        # 4. the loop
        if window is not None:
            sinks.append(window.show)
        t0 = time.perf_counter()
        try:
            done = _live(stream, source, sinks, args)
        except CameraError as exc:  # the camera stopped: what was recorded is dropped
            print(f"error: {exc}", file=sys.stderr)
            return 1
        seconds = time.perf_counter() - t0
    print(f"{done} frames in {seconds:.1f} s ({done / max(seconds, 1e-9):.1f} frames/s)"
          + (f" -> {args.out}" if args.out else ""), flush=True)
    return 0


def _live(stream: Stream, source, sinks: list, args: argparse.Namespace) -> int:
    """The live loop, recording to --out when asked: the file is renamed into place only when frames were written
    and nothing failed (a Ctrl-C keeps the recording so far)."""
    engine = stream.renderer.engine
    status = FpsLine(sys.stderr, engine.name if engine is not None else f"{stream.renderer.teacher} teacher")
    if not args.out:
        return run_live(stream, source, sinks, args.frames, status)
    with atomic_path(args.out) as tmp:
        recorder = Recorder(tmp, source.fps, constant_rate=isinstance(source, FileFrames))
        try:
            done = run_live(stream, source, [recorder.write, *sinks], args.frames, status)
            if not recorder.frames:
                raise CameraError("no frame was recorded; nothing written")
            recorder.finish()
        finally:
            recorder.close()
    return done


def _booth(stream: Stream, source, window: Optional[Window], args: argparse.Namespace) -> int:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:
        shots = take_shots(stream, source, args.countdown, window=window, say=say)
    except CameraError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped before the four shots; nothing written", file=sys.stderr)
        return 1
    title = time.strftime("%Y.%m.%d") if args.title is None else args.title
    lost = missing_glyphs("".join(args.caption or []) + title)
    if lost:
        say(f"note: no font here draws {lost!r} (shown as boxes); install a Hangul font, e.g. fonts-noto-cjk or "
            "fonts-nanum")
    try:
        page = compose_booth([res.image for res in shots], args.layout, captions=args.caption, title=title,
                             focus=[focus_point([t.box.as_int() for t in res.tracks]) for res in shots])
        save_image(page, args.out)
    except (ValueError, OSError) as exc:
        return _error(exc)
    print(f"{args.out} ({args.layout}, {page.shape[1]}x{page.shape[0]})", flush=True)
    return 0


if __name__ == "__main__":
    from .memory import settle_malloc

    settle_malloc()
    sys.exit(main())
