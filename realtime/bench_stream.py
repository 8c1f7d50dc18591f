"""Benchmark the realtime stream on a real clip: pipelined vs sequential, per-stage time, flicker with and without
temporal blending, end-to-end video conversion, and memory over many frames.

    python -m realtime.bench_stream [--clip NAME] [--sizes 720p 1080p] [--frames 60] [--engine auto]
        [--max-side PX] [--convert] [--memory 10000] [--json]

The clip's first `--frames` frames are decoded once and scaled to each size (1080p from a 720p clip is an
upscale: the work per frame is what matters). Per size:

- sequential: `Stream.process` frame after frame, every stage in one thread;
- pipelined: `Stream.run`, one thread per stage (perceive, render, compose) with bounded queues;
- flicker: the warping error between consecutive output frames (realtime.temporal.flicker) without and with
  temporal blending, and the input clip's own, for scale; frame pairs across a cut are not scored (counted).

`--convert` also times `python -m realtime.video`'s path end to end (decode, stream, encode, mux) on a file of
each size written first (H.264, the clip's frames), sequential and pipelined. `--memory N` runs N frames (the
clip's frames over and over) through the pipelined stream at the first size and prints the resident memory as
it goes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from studio import load_config

from .stream import Stream, StreamConfig
from .temporal import flickers
from .video import convert_video

SIZES = {"240p": (426, 240), "360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
CLIP = "pedestrians_walking_faces_720p.mp4"


def load_frames(path: Path, n: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= n:
                break
            out.append(f.to_ndarray(format="rgb24"))
    if not out:
        raise SystemExit(f"{path}: no frames")
    return out


def scaled(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    w, h = size
    if frames[0].shape[0] > frames[0].shape[1]:  # a portrait clip: the same size, standing up
        w, h = h, w
    return [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA if f.shape[1] > w
                                                       else cv2.INTER_CUBIC) for f in frames]


def write_clip(frames: list[np.ndarray], path: Path, fps: int = 25) -> Path:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            out.mux(s.encode(vf))
        out.mux(s.encode(None))
    return path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=CLIP)
    ap.add_argument("--sizes", nargs="+", default=["720p", "1080p"], choices=list(SIZES))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--character", default="classic")
    ap.add_argument("--detect-every", type=int, default=5)
    ap.add_argument("--max-side", type=int, default=None, help="stylise at most this long side (StreamConfig)")
    ap.add_argument("--no-contours", action="store_true", help="the student without its contour lines")
    ap.add_argument("--convert", action="store_true", help="also time video conversion end to end")
    ap.add_argument("--memory", type=int, default=0, metavar="N", help="also run N frames and watch the memory")
    ap.add_argument("--media", default=os.environ.get("TEST_MEDIA_DIR",
                                                      str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    cfg = load_config()
    clip = load_frames(Path(args.media) / "videos" / args.clip, args.frames)

    def stream(**kw) -> Stream:
        return Stream(cfg, StreamConfig(character=args.character, engine=args.engine,
                                        detect_every=args.detect_every, max_side=args.max_side,
                                        contours=not args.no_contours, **kw)).prepare()

    rows, conversions, memory, resolved = [], [], [], args.engine
    for size in args.sizes:
        row, converted, resolved = measure(stream, scaled(clip, SIZES[size]), size, args.convert)
        rows.append(row)
        conversions += converted
    if args.memory:
        memory = watch_memory(stream(), scaled(clip, SIZES[args.sizes[0]]), args.memory)
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    if args.json:
        print(json.dumps({"machine": machine, "engine": resolved, "clip": args.clip,
                          "contours": not args.no_contours, "rows": rows,
                          "conversions": conversions, "memory": memory}))
        return 0
    print(f"machine: {machine}; clip: {args.clip}, {len(clip)} frames; engine: {resolved}; "
          f"character: {args.character}; faces detected every {args.detect_every} frames; "
          f"stylised at {'full size' if not args.max_side else f'a long side of at most {args.max_side} px'}; "
          f"contour lines {'off' if args.no_contours else 'on'}")
    print_tables(rows, conversions, memory)
    return 0


def measure(stream, frames: list[np.ndarray], size: str, convert: bool) -> tuple[dict, list[dict], str]:
    """One size: sequential and pipelined speed (the pipelined frames must equal the sequential ones), stage
    times, flicker with and without blending, and with `convert` whole-file conversions. Returns (row,
    conversions, what `--engine` resolved to)."""
    raw_stream = stream(temporal=False)
    t0 = time.perf_counter()
    raw = [raw_stream.process(f).image for f in frames]
    seq_raw = len(frames) / (time.perf_counter() - t0)
    s = stream()
    t0 = time.perf_counter()
    smooth = [s.process(f).image for f in frames]
    seq = len(frames) / (time.perf_counter() - t0)
    stages = s.stats()["stages"]
    s.reset()
    t0 = time.perf_counter()
    piped = [r.image for r in s.run(frames)]
    pip = len(frames) / (time.perf_counter() - t0)
    latency = s.stats()["latency_ms"]
    assert all(np.array_equal(a, b) for a, b in zip(smooth, piped)), "pipelined frames differ from sequential"
    f_in, f_raw, f_smooth = flickers(frames, frames, raw, smooth)
    row = {"size": size, "frames": len(frames), "sequential_fps": seq, "pipelined_fps": pip,
           "speedup": pip / seq, "sequential_no_temporal_fps": seq_raw, "pipelined_latency_ms": latency,
           **{f"{k}_ms": v for k, v in stages.items()},
           "flicker_input": f_in.error, "flicker_per_frame": f_raw.error, "flicker_temporal": f_smooth.error,
           "flicker_reduction": 1 - f_smooth.error / f_raw.error, "flow_coverage": f_raw.coverage,
           "flicker_cuts": f_raw.cuts}
    conversions = []
    if convert:
        with tempfile.TemporaryDirectory() as tmp:
            src = write_clip(frames, Path(tmp) / f"in-{size}.mp4")
            for pipelined in (False, True):
                rep = convert_video(src, Path(tmp) / "out.mp4", s, progress=False, pipelined=pipelined)
                conversions.append({"size": size, "mode": "pipelined" if pipelined else "sequential",
                                    "frames": rep.frames, "fps": rep.fps})
    return row, conversions, s.name


def watch_memory(s, frames: list[np.ndarray], n: int) -> list[dict]:
    """`n` frames (the clip's, over and over) through the pipelined stream; the resident memory at three marks."""
    marks, memory = sorted({n // 10, n // 2, n - 1}), []

    def cycle():
        for i in range(n):
            yield frames[i % len(frames)]

    t0 = time.perf_counter()
    for r in s.run(cycle()):
        if r.index in marks:
            memory.append({"frame": r.index + 1, "rss_mb": round(rss_mb(), 1),
                           "seconds": round(time.perf_counter() - t0, 1)})
    return memory


def print_tables(rows: list[dict], conversions: list[dict], memory: list[dict]) -> None:
    print()
    print("| size | sequential fps | pipelined fps | pipelined/sequential | latency (pipelined) | perceive ms | "
          "render ms | compose ms | sequential fps, no temporal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['sequential_fps']:.2f} | {r['pipelined_fps']:.2f} | {r['speedup']:.2f}× | "
              f"{r['pipelined_latency_ms']:.0f} ms | {r['perceive_ms']:.1f} | {r['render_ms']:.1f} | "
              f"{r['compose_ms']:.1f} | {r['sequential_no_temporal_fps']:.2f} |")
    print()
    print("| size | flicker: input | per-frame student | with temporal blending | reduction | flow coverage | "
          "cuts (not scored) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['flicker_input']:.2f} | {r['flicker_per_frame']:.2f} | "
              f"{r['flicker_temporal']:.2f} | {100 * r['flicker_reduction']:.0f} % | "
              f"{100 * r['flow_coverage']:.0f} % | {r['flicker_cuts']} |")
    if conversions:
        print()
        print("| size | conversion | frames | fps end to end |")
        print("|---|---|---|---|")
        for c in conversions:
            print(f"| {c['size']} | {c['mode']} | {c['frames']} | {c['fps']:.2f} |")
    if memory:
        print()
        print("| frames | resident memory | seconds |")
        print("|---|---|---|")
        for m in memory:
            print(f"| {m['frame']} | {m['rss_mb']:.1f} MB | {m['seconds']:.1f} |")


if __name__ == "__main__":
    from .memory import settle_malloc

    settle_malloc()
    raise SystemExit(main())
