"""How many person ids the realtime path gives on each clip, and a sheet of every id's faces to count real people.

    python tools/track_ids.py [--clips DIR] [--out DIR] [--every N] [--no-reid]

Faces are found as the Video and Webcam tabs find them (studio.perception.tracking.FaceFollower: a detection
every `--every` frames, optical flow between) on each clip at its own size up to 1280 px, and tracked by
FaceTracker with the frames (cuts, colours). Prints a table (clip, frames, faces, ids, cuts, ids seen on at least
10 frames) and writes `<out>/<clip>.png`: one row per id, its first, middle and last face and its frame span, to
tell by eye how many real people the ids stand for.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_clip(path: Path, side: int = 1280):
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            h, w = bgr.shape[:2]
            k = min(1.0, side / max(h, w))
            if k < 1.0:
                bgr = cv2.resize(bgr, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def track_clip(path: Path, every: int = 5, reid: bool = True) -> tuple[list, int]:
    """Per frame, the list of (id, box, crop) of its faces; and the cuts the tracker saw."""
    from studio.config import load_config
    from studio.perception.faces import get_face_backend
    from studio.perception.tracking import FaceFollower, FaceTracker

    cfg = load_config().perception
    follower = FaceFollower(get_face_backend(cfg.face_backend, cfg), every)
    tracker = FaceTracker() if reid else FaceTracker(reid_frames=0)
    frames = []
    for frame in read_clip(path):
        tracks = tracker.update(follower(frame), frame)
        row = []
        for t in tracks:
            b = t.box
            x0, y0, x1, y1 = (int(round(v)) for v in (b.x0, b.y0, b.x1, b.y1))
            crop = frame[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
            row.append((t.id, b, crop.copy() if crop.size else None))
        frames.append(row)
    return frames, tracker.cuts


def id_sheet(frames: list, side: int = 72) -> np.ndarray:
    seen: dict[int, list] = {}
    for n, row in enumerate(frames):
        for pid, _, crop in row:
            if pid is not None and crop is not None:
                seen.setdefault(pid, []).append((n, crop))
    rows = []
    for pid in sorted(seen):
        items = seen[pid]
        picks = [items[0], items[len(items) // 2], items[-1]]
        tiles = [cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA) for _, c in picks]
        label = np.full((side, 3 * side, 3), 255, np.uint8)
        cv2.putText(label, f"id {pid}", (4, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(label, f"{items[0][0]}-{items[-1][0]} ({len(items)})", (4, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate(tiles + [label], axis=1))
    if not rows:
        return np.full((side, 6 * side, 3), 255, np.uint8)
    return np.concatenate(rows, axis=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--out", type=Path, default=None, help="write one id sheet per clip here")
    ap.add_argument("--every", type=int, default=5, help="full detection every N frames (the stream's default)")
    ap.add_argument("--no-reid", action="store_true", help="ByteTrack's ids alone, for comparison")
    args = ap.parse_args(argv)
    print("| clip | frames | faces | ids | cuts | ids on >= 10 frames |")
    print("|---|---|---|---|---|---|")
    for path in sorted(args.clips.glob("*.mp4")):
        frames, cuts = track_clip(path, args.every, not args.no_reid)
        counts: dict[int, int] = {}
        for row in frames:
            for pid, _, _ in row:
                if pid is not None:
                    counts[pid] = counts.get(pid, 0) + 1
        faces = sum(len(r) for r in frames)
        lasting = sum(c >= 10 for c in counts.values())
        print(f"| {path.stem} | {len(frames)} | {faces} | {len(counts)} | {cuts} | {lasting} |", flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.out / f"{path.stem}.png"), cv2.cvtColor(id_sheet(frames), cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
