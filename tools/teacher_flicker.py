"""Flicker of the teacher path on a clip: each frame stylised on its own by the studio's teacher, and as the Video
tab's teacher engine does before any blending (the light and the palette carried across the clip:
realtime.renderers.SteadyClip; also the light alone),
scored with realtime.temporal.flicker (Lai et al.'s warping error, grey levels; lower is steadier), beside the clip's
own warping error.

    python tools/teacher_flicker.py [--clip NAME] [--frames 24] [--side 360] [--character classic]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from realtime.bench_stream import load_frames
    from realtime.renderers import SteadyClip
    from realtime.temporal import flickers
    from studio.color import shrink
    from studio.config import load_config
    from studio.pipeline import Stylizer
    from studio.types import StylizeParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--clip", default="face_talking_glasses_vertical_720x1280.mp4")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--side", type=int, default=360, help="frames are fitted to this long side")
    ap.add_argument("--character", default="classic")
    args = ap.parse_args(argv)
    if args.frames < 2:
        print("error: --frames must be at least 2", file=sys.stderr)
        return 2
    path = args.media / "videos" / args.clip
    if not path.is_file():
        print(f"error: no clip {path}", file=sys.stderr)
        return 2
    frames = [shrink(f, args.side)[0] for f in load_frames(path, args.frames)]
    if len(frames) < 2:
        print(f"error: fewer than two frames could be read from {path}", file=sys.stderr)
        return 2
    stylizer = Stylizer(load_config())
    params = StylizeParams(character=args.character)
    outputs = [stylizer(f, params).image for f in frames]
    carried = {"light": [], "both": []}
    for kind, runs in carried.items():
        clip = SteadyClip()
        for f in frames:
            clip.see(f)
            runs.append(stylizer(f, params, light=clip, palette=clip.palette if kind == "both" else None).image)
    clip_error, teacher_error, light_error, video_error = flickers(frames, frames, outputs, carried["light"],
                                                                   carried["both"])
    print(f"| clip | frames | side | input | teacher ({args.character}), each frame | the light carried | "
          f"the light and the palette carried (Video tab) | pixels scored |\n|---|---|---|---|---|---|---|---|\n"
          f"| {args.clip} | {len(frames)} | {args.side} | {clip_error.error:.2f} | {teacher_error.error:.2f} | "
          f"{light_error.error:.2f} | {video_error.error:.2f} | {teacher_error.coverage:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
