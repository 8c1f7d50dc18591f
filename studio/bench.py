"""Benchmark of the photo path: seconds per photo, per stage, at 512² and 1080p. Prints a Markdown table.

    python -m studio.bench                      # photos from ../shared/data/images
    python -m studio.bench --repeat 3 --character noir

The numbers go into docs/PERFORMANCE.md with the machine they were measured on.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2

from . import StylizeParams, Stylizer, load_config

DEFAULT_PHOTOS = ("portrait_light_skin_asian_01.jpg", "group_4faces_diverse_skin_01.jpg", "fullbody_two_dancers_01.jpg",
                  "bg_lake_mountains_01.jpg")


def _fit(image, size: tuple[int, int]):
    """Center-crop to the target aspect, then resize to exactly `size` (w, h)."""
    h, w = image.shape[:2]
    tw, th = size
    target = tw / th
    if w / h > target:
        nw = int(h * target)
        image = image[:, (w - nw) // 2:(w - nw) // 2 + nw]
    else:
        nh = int(w / target)
        image = image[(h - nh) // 2:(h - nh) // 2 + nh]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if image.shape[1] > tw else cv2.INTER_CUBIC)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", default=os.environ.get("TEST_MEDIA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--photos", nargs="*", default=list(DEFAULT_PHOTOS))
    ap.add_argument("--character", default="classic")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)

    from .io import load_image

    stylizer = Stylizer(load_config())
    params = StylizeParams(character=args.character)
    sizes = {"512²": (512, 512), "1080p": (1920, 1080)}
    rows = []
    for label, size in sizes.items():
        stage_times: dict[str, list[float]] = {}
        totals = []
        for name in args.photos:
            image = _fit(load_image(Path(args.media) / "images" / name), size)
            stylizer(image, params)  # warm-up (model loads)
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = stylizer(image, params)
                totals.append(time.perf_counter() - t0)
                for k, v in result.timings.items():
                    stage_times.setdefault(k, []).append(v)
        rows.append((label, statistics.median(totals), {k: statistics.median(v) for k, v in stage_times.items()}))
    stages = list(rows[0][2])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"cv2 threads {cv2.getNumThreads()}; photos: {', '.join(args.photos)}; character {args.character}; "
          f"median of {args.repeat} runs per photo")
    print()
    print("| stage | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for st in stages:
        print(f"| {st} | " + " | ".join(f"{r[2].get(st, 0.0) * 1000:.0f} ms" for r in rows) + " |")
    print("| **total (wall)** | " + " | ".join(f"**{r[1]:.2f} s**" for r in rows) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
