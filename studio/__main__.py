"""Command line: `python -m studio stylize INPUT... --out DIR [options]`, `python -m studio booth PHOTO1..PHOTO4 --out
FILE.png [options]` and `python -m studio characters`.

    python -m studio stylize ../shared/data/images --out out/ --character pastel --line 0.7 --json
    python -m studio booth a.jpg b.jpg c.jpg d.jpg --character pastel --layout grid --caption 하나 둘 셋 넷 --out booth.png

INPUT may be files or folders (their images, not recursive). `--teacher sd` uses Stable Diffusion (see
studio/stylize/sd_teacher.py: --base, --lora FILE[:WEIGHT], --strength, --steps, --guidance, --seed). Each input gets `<stem>.png` in DIR with the
input's size. A bad input prints one line `error: <input>: <why>` on stderr, the others are still done,
and the exit status is 1. With --json, one JSON object per input goes to stdout.

`booth` stylises four photos with the teacher and lays them out as a four-cut photo booth page (studio.booth:
`--layout strip` 1x4 or `grid` 2x2, `--caption` under each panel, `--title` in the footer, today's date by
default), each crop kept on its faces; the page is written atomically. A photo that cannot be used prints its
`error:` line and nothing is written (exit status 1).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from realtime.engines import EngineUnavailable
from realtime.student import StudentStylizer

from . import Stylizer
from .booth import LAYOUTS, SHOTS, compose_booth, focus_point, missing_glyphs
from .checks import FACTOR, SD_GUIDANCE, SD_STEPS, SD_STRENGTH, SEED
from .config import ConfigError, load_config
from .perception.faces import get_face_backend
from .pipeline import check_image
from .stylize.lora import SDModelMissing, parse_lora
from .types import BACKGROUND_FACTORS, FACTORS, StylizeParams


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m studio", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="studio config YAML (default configs/studio.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser("stylize", help="stylise photos into PNGs")
    st.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    st.add_argument("--out", required=True, help="output folder")
    st.add_argument("--character", default=None, help="character name (see `python -m studio characters`)")
    st.add_argument("--teacher", default="classic")
    for name in FACTORS:
        st.add_argument(f"--{name}", type=FACTOR.arg(f"--{name}"), default=None, help=f"{name} factor in [0, 1]")
    for name in (n.removeprefix("background_") for n in BACKGROUND_FACTORS):
        st.add_argument(f"--bg-{name}", type=FACTOR.arg(f"--bg-{name}"), default=None, dest=f"background_{name}",
                        help=f"background {name} factor in [0, 1] (default: from the character)")
    st.add_argument("--no-light", action="store_true", help="do not normalise lighting")
    st.add_argument("--seed", type=SEED.arg("--seed"), default=0)
    sd = st.add_argument_group("SD teacher (--teacher sd)")
    sd.add_argument("--base", help="base model: hub id, diffusers folder or .safetensors (default: config sd.base)")
    sd.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]",
                    help="a .safetensors LoRA with its weight (default 1.0); repeat to stack")
    sd.add_argument("--strength", type=SD_STRENGTH.arg("--strength"), default=None, help="img2img strength in (0, 1]")
    sd.add_argument("--steps", type=SD_STEPS.arg("--steps"), default=None, help="denoising steps")
    sd.add_argument("--guidance", type=SD_GUIDANCE.arg("--guidance"), default=None,
                    help="classifier-free guidance scale")
    st.add_argument("--json", action="store_true", help="print one JSON object per input")
    rt = st.add_argument_group("student (realtime path)")
    rt.add_argument("--engine", help="run the character's distilled student on this engine (auto: the fastest "
                                     "here; onnxruntime, onnxruntime-int8, torch, tensorrt) instead of a teacher")
    rt.add_argument("--student", help="student folder (default: students/<character>/ or <data_dir>/students/<character>/)")
    rt.add_argument("--no-contours", action="store_true",
                    help="with --engine: no contour lines over the student, only the face strokes")
    bo = sub.add_parser("booth", help="four photos, stylised, on one four-cut photo booth page")
    bo.add_argument("photos", nargs="+", metavar="PHOTO", help="exactly four photos, in panel order")
    bo.add_argument("--out", required=True, help="the page (.png, .jpg, .webp)")
    bo.add_argument("--character", default=None, help="character name (see `python -m studio characters`)")
    bo.add_argument("--teacher", default="classic", help="classic (default) or sd (its model from the config)")
    for name in FACTORS:
        bo.add_argument(f"--{name}", type=FACTOR.arg(f"--{name}"), default=None, help=f"{name} factor in [0, 1]")
    bo.add_argument("--layout", choices=tuple(LAYOUTS), default="strip", help="strip: 1x4 (default); grid: 2x2")
    bo.add_argument("--caption", nargs="+", action="extend", default=None, metavar="TEXT",
                    help="a caption under each panel, in order (up to 4); put it after the photos")
    bo.add_argument("--title", default=None, help="the footer's text (default: today's date; '' for none)")
    bo.add_argument("--seed", type=SEED.arg("--seed"), default=0)
    sub.add_parser("characters", help="list the characters")
    for sp in (st, bo):  # also accepted after the command
        sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--set", action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE",
                        help="config override (e.g. sd.resolution=512), repeatable")
    return ap.parse_args(argv)


def cmd_stylize(args, cfg) -> int:
    from .io import ImageLoadError, error_line, iter_image_files, load_image, output_folder, save_image, unique_output
    params = StylizeParams(
        character=args.character or cfg.default_character, teacher=args.teacher, line=args.line,
        texture=args.texture, color=args.color, warp=args.warp, background_line=args.background_line,
        background_texture=args.background_texture, background_color=args.background_color,
        normalize_light=not args.no_light, seed=args.seed, base=args.base,
        loras=tuple(parse_lora(s) for s in args.lora), strength=args.strength, steps=args.steps,
        guidance=args.guidance)
    if args.engine:
        return cmd_student(args, cfg, params)
    stylizer = Stylizer(cfg)
    try:
        stylizer.prepare(params)  # loads the teacher's models now: a missing base model fails here, once
    except (ValueError, SDModelMissing) as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    try:
        out_dir = output_folder(args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = iter_image_files(args.inputs)
    if not files:
        print("error: no images found in the given inputs", file=sys.stderr)
        return 1
    failed, taken = 0, set()
    for src in files:
        t0 = time.perf_counter()
        try:
            image = load_image(src, max_pixels=cfg.max_input_pixels)
            result = stylizer(image, params)
            dest = save_image(result.image, unique_output(out_dir, src, taken))
        except (ImageLoadError, ValueError, OSError, SDModelMissing) as exc:
            failed += 1
            print(error_line(src, exc), file=sys.stderr)
            continue
        seconds = time.perf_counter() - t0
        if args.json:
            print(json.dumps({"input": str(src), "output": str(dest), "faces": len(result.faces),
                              "width": int(image.shape[1]), "height": int(image.shape[0]),
                              "character": params.character, "factors": result.factors,
                              "seconds": round(seconds, 3),
                              "timings": {k: round(v, 4) for k, v in result.timings.items()}}), flush=True)
        else:
            print(f"{src} -> {dest} ({len(result.faces)} faces, {seconds:.2f}s)", flush=True)
    return 1 if failed else 0


def cmd_student(args, cfg, params) -> int:
    """Stylise with a distilled student through an engine (the CLI is a front end, like app.py: it may use
    realtime; the studio core does not). The per-frame step is realtime.student's, shared with video files."""
    from .io import ImageLoadError, error_line, iter_image_files, load_image, output_folder, save_image, unique_output

    try:
        student = StudentStylizer(cfg, params.character, args.engine, args.student, params.line, params.texture,
                                  params.color, params.warp, contours=not args.no_contours)
    except (ValueError, EngineUnavailable, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine, f = student.engine, student.factors
    faces = get_face_backend(cfg.perception.face_backend, cfg.perception)
    try:
        out_dir = output_folder(args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed, taken = 0, set()
    for src in iter_image_files(args.inputs):
        t0 = time.perf_counter()
        try:
            image = load_image(src, max_pixels=cfg.max_input_pixels)
            check_image(image, cfg.max_input_pixels)  # before the face detector: the teacher's rule
            found = faces.detect(image)
            dest = save_image(student(image, found), unique_output(out_dir, src, taken))
        except (ImageLoadError, ValueError, OSError) as exc:
            failed += 1
            print(error_line(src, exc), file=sys.stderr)
            continue
        seconds = time.perf_counter() - t0
        if args.json:
            print(json.dumps({"input": str(src), "output": str(dest), "faces": len(found), "engine": engine.name,
                              "device": engine.device, "student": str(student.folder), "character": params.character,
                              "factors": f, "contours": student.contours,
                              "width": int(image.shape[1]), "height": int(image.shape[0]),
                              "seconds": round(seconds, 3)}), flush=True)
        else:
            print(f"{src} -> {dest} ({engine.name}, {seconds:.3f}s)", flush=True)
    return 1 if failed else 0


BOOTH_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def cmd_booth(args, cfg) -> int:
    """Four photos through the teacher, then studio.booth's page: the photos are checked before any is stylised,
    and the page is written only when all four are done."""
    import datetime

    from .io import ImageLoadError, error_line, load_image, save_image

    if len(args.photos) != SHOTS:
        print(f"error: a four-cut page needs exactly {SHOTS} photos, got {len(args.photos)}", file=sys.stderr)
        return 2
    if os.path.splitext(args.out)[1].lower() not in BOOTH_SUFFIXES:
        print(f"error: --out {args.out}: the page is a picture ({', '.join(BOOTH_SUFFIXES)})", file=sys.stderr)
        return 2
    if args.caption and len(args.caption) > SHOTS:
        print(f"error: at most {SHOTS} captions (one per panel), got {len(args.caption)}", file=sys.stderr)
        return 2
    params = StylizeParams(character=args.character or cfg.default_character, teacher=args.teacher, line=args.line,
                           texture=args.texture, color=args.color, warp=args.warp, seed=args.seed)
    images, failed = [], 0
    for src in args.photos:  # all four read first: a bad one fails before minutes of stylising
        try:
            images.append(load_image(src, max_pixels=cfg.max_input_pixels))
        except ImageLoadError as exc:
            failed += 1
            print(error_line(src, exc), file=sys.stderr)
    if failed:
        return 1
    stylizer = Stylizer(cfg)
    try:
        stylizer.prepare(params)
    except (ValueError, SDModelMissing) as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    shots, focus = [], []
    for src, image in zip(args.photos, images):
        try:
            result = stylizer(image, params)
        except (ValueError, SDModelMissing) as exc:
            print(error_line(src, exc), file=sys.stderr)
            return 1
        shots.append(result.image)
        focus.append(focus_point([(f.box.x0, f.box.y0, f.box.x1, f.box.y1) for f in result.faces]))
    title = datetime.date.today().strftime("%Y.%m.%d") if args.title is None else args.title
    lost = missing_glyphs("".join(args.caption or []) + title)
    if lost:
        print(f"note: no font here draws {lost!r} (shown as boxes); install a Hangul font, e.g. fonts-noto-cjk or "
              "fonts-nanum", file=sys.stderr)
    try:
        page = compose_booth(shots, args.layout, captions=args.caption, title=title, focus=focus)
        dest = save_image(page, args.out)
    except (ValueError, OSError) as exc:
        print(f"error: {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"{dest} ({args.layout}, {page.shape[1]}x{page.shape[0]}, {params.character}, "
          f"{time.perf_counter() - t0:.1f}s)", flush=True)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "characters":
        from .characters import list_characters
        for ch in list_characters(cfg):
            print(f"{ch.name:12s} {ch.display_name}: {ch.description}")
        return 0
    if args.command == "booth":
        return cmd_booth(args, cfg)
    return cmd_stylize(args, cfg)


if __name__ == "__main__":
    sys.exit(main())
