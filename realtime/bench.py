"""Benchmark the student on every available engine against the classic teacher, on real frames.

    python -m realtime.bench [--student DIR] [--sizes 512 720p 1080p] [--frames 20] [--json]

Without --student the shipped students/classic/ is timed (a randomly initialised student of the default size
when it is missing: the speed of a network does not depend on its weights). Prints ms/frame and fps per
engine and size (the network alone on the whole frame: frames in, stylised frames out), the step the realtime path
runs (`step ms`: uint8 frame in, the network at the working size and back to the frame's size, uint8 out;
realtime.guided; no faces, no ink), the teacher's time on the same frames (its whole pipeline, perception
included), and the student/teacher speed ratio of the step.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from studio import StylizeParams, Stylizer, load_config
from studio.bench import _fit

from .engines import ENGINES, EngineUnavailable, load_engine

SIZES = {"512": (512, 512), "720p": (1280, 720), "1080p": (1920, 1080)}
PHOTO = "portrait_light_skin_asian_01.jpg"


def frame_for(size: tuple[int, int], media: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real photo at exactly `size`: (NCHW float32 for the student, HWC uint8 for the teacher)."""
    from studio.io import load_image

    img = _fit(load_image(media / "images" / PHOTO), size)
    return (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy(), img


def time_engine(engine, x: np.ndarray, f: np.ndarray, n: int) -> float:
    engine(x, f)  # warm-up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        engine(x, f)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_step(engine, u8: np.ndarray, f: np.ndarray, n: int) -> float:
    """Median seconds of the realtime path's network step on one uint8 frame (realtime.student.stylize_frame without
    faces or ink: the working size, the engine, back to the frame's size)."""
    from .student import stylize_frame

    return time_engine(lambda img, fac: stylize_frame(engine, img, [], None, 0.0, fac), u8, f, n)


def replay_ms(engine, n: int) -> float:
    """Mean ms of the torch engine's captured CUDA graph replayed on the GPU alone (after time_engine captured it
    for the current shape): what the network costs without the host-device copies."""
    import torch

    graph = engine._graph.graph
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()
    start.record()
    for _ in range(n):
        graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / n


def _gpu_name() -> str:
    import sys

    torch = sys.modules.get("torch")  # imported by the torch engine; not imported here for a CPU-only run
    return f", GPU {torch.cuda.get_device_name()}" if torch is not None and torch.cuda.is_available() else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--teacher-frames", type=int, default=2,
                    help="frames the teacher is timed on; 0 leaves the teacher out (a machine without mediapipe)")
    ap.add_argument("--media", default=os.environ.get("TEST_MEDIA_DIR",
                                                      str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from studio.models.student_unet import StudentUNet

    tmp = None
    shipped = Path(__file__).resolve().parents[1] / "students" / "classic"
    student = args.student or (str(shipped) if (shipped / "model.safetensors").is_file() else None)
    if student is None:
        tmp = tempfile.TemporaryDirectory()
        student = StudentUNet().save_pretrained(Path(tmp.name) / "student")
    engines, skipped = {}, {}
    for name in ENGINES:
        try:
            engines[name] = load_engine(name, student)
        except EngineUnavailable as exc:
            skipped[name] = str(exc)
    if getattr(engines.get("torch"), "mode", None) == "cuda-graph":  # also without the graph: what it saves
        engines["torch-eager"] = load_engine("torch", student)
        engines["torch-eager"].mode = "eager"
    stylizer = Stylizer(load_config()) if args.teacher_frames > 0 else None
    rows, replays = [], {}
    for size_name in args.sizes:
        x, u8 = frame_for(SIZES[size_name], Path(args.media))
        f = np.array([[0.6, 0.65, 0.7]], np.float32)  # line, texture, color
        teacher = None
        if stylizer is not None:
            stylizer(u8, StylizeParams())  # warm-up
            ts = []
            for _ in range(args.teacher_frames):
                t0 = time.perf_counter()
                stylizer(u8, StylizeParams())
                ts.append(time.perf_counter() - t0)
            teacher = statistics.median(ts)
        for name, engine in engines.items():
            s = time_engine(engine, x, f, args.frames)
            if getattr(engine, "mode", None) == "cuda-graph":  # before time_step re-captures at the working size
                replays[size_name] = replay_ms(engine, args.frames)
            step = time_step(engine, u8, f, args.frames)
            rows.append({"engine": name, "device": engine.device, "precision": engine.precision,
                         "mode": getattr(engine, "mode", ""), "size": size_name, "ms": s * 1000, "fps": 1 / s,
                         "step_ms": step * 1000, "teacher_ms": teacher and teacher * 1000,
                         "speedup": teacher and teacher / step})
    if args.json:
        print(json.dumps({"rows": rows, "skipped": skipped, "graph_replay_ms": replays, "machine": platform.machine(),
                          "cores": os.cpu_count()}))
        return 0
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores{_gpu_name()}; student: "
          f"{student if tmp is None else 'default size, random weights'}")
    print()
    print("| engine | device | precision | size | network ms/frame (whole frame) | fps | step ms (at the working size, "
          "resized back) | teacher ms/frame | step/teacher speed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        teacher = "— | —" if r["teacher_ms"] is None else f"{r['teacher_ms']:.0f} | {r['speedup']:.0f}×"
        print(f"| {r['engine']} | {r['device']} | {r['precision']} | {r['size']} | {r['ms']:.2f} | {r['fps']:.1f} | "
              f"{r['step_ms']:.1f} | {teacher} |")
    if replays:
        print("\ntorch's CUDA graph replayed alone (the GPU alone: no host copies), ms/frame: " +
              ", ".join(f"{k} {v:.3f}" for k, v in replays.items()))
    for name, why in skipped.items():
        print(f"\n{name}: not available here ({why})")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
