"""The classic teacher against itself: how much its output changes when its input changes invisibly.

    python tools/teacher_stability.py [--photos N] [--side 512] [--character classic] [--stages]

For each shared photo (at `--side` px), PSNR (dB) of the teacher's output on the photo against its output on (a) the
photo plus Gaussian noise of sigma = 1/255 (rounded back to 8 bits) and (b) the photo shifted by one pixel (compared
on the overlap, shifted back). Prints a table per photo and the worst and median; `--stages` adds the steps of the
person layer on their own (abstract; shade: abstract then colorize; the ink alpha) with the perception of the clean
photo, to tell which step flips. Issue 14's targets: full teacher >= 40 dB under noise, >= 34 dB under a shift.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ("portrait_dark_skin_02.png", "portrait_glasses_beard_brown_skin_01.jpg", "group_4faces_diverse_skin_01.jpg",
          "two_people_01.jpg", "bg_indoor_room_01.jpg", "portrait_light_skin_asian_01.jpg",
          "fullbody_two_dancers_01.jpg", "group_night_flash_01.jpg", "portrait_medium_skin_01.jpg",
          "profile_faces_audience_blue_light_01.jpg", "turned_face_child_01.jpg", "bg_indoor_hall_01.jpg")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    peak = 255.0 if a.dtype == np.uint8 else 1.0
    return float(10 * np.log10(peak * peak / max(mse, 1e-12)))


def noisy(img: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float32) + rng.normal(0.0, 1.0, img.shape), 0, 255).round().astype(np.uint8)


def shifted(img: np.ndarray) -> np.ndarray:
    """The photo moved one pixel right and down (the new first row and column repeat the old ones)."""
    out = np.empty_like(img)
    out[1:, 1:] = img[:-1, :-1]
    out[0, 1:] = img[0, :-1]
    out[1:, 0] = img[:-1, 0]
    out[0, 0] = img[0, 0]
    return out


def back(out: np.ndarray) -> np.ndarray:
    """An output of the shifted photo, moved back onto the original's pixels (all but the last row and column)."""
    return out[1:, 1:]


def crop(out: np.ndarray) -> np.ndarray:
    return out[:-1, :-1]


def moved_perception(per):
    """A perception moved with the photo by `shifted` (one pixel right and down): masks, boxes and points."""
    from dataclasses import replace

    from studio.types import Box

    def move(face):
        lm = None if face.landmarks is None else face.landmarks.astype(np.float32)
        if lm is not None:
            lm[:, :2] += 1.0
        kp = None if face.keypoints is None else face.keypoints + 1.0
        b = face.box
        return replace(face, box=Box(b.x0 + 1, b.y0 + 1, b.x1 + 1, b.y1 + 1), landmarks=lm, keypoints=kp)

    pose = None if per.pose is None else per.pose + np.array([1.0, 1.0, 0.0], np.float32)
    return replace(per, faces=[move(f) for f in per.faces], person=shifted(per.person), skin=shifted(per.skin),
                   hair=None if per.hair is None else shifted(per.hair),
                   hair_heads=None if per.hair_heads is None else shifted(per.hair_heads), pose=pose)


def full_teacher(cfg, character: str):
    from studio.pipeline import Stylizer
    from studio.types import StylizeParams

    stylizer = Stylizer(cfg)
    params = StylizeParams(character=character)
    return lambda img, moved=False: stylizer(img, params).image


def stage_functions(cfg, character: str, photo: np.ndarray):
    """The person layer's steps on their own, with the clean photo's perception where they need it."""
    from studio.characters import load_character
    from studio.compose import face_region
    from studio.perception.skin import skin_tone
    from studio.pipeline import Stylizer
    from studio.stylize.cartoonizer import Cartoonizer, LayerSettings, abstract, colorize
    from studio.types import StylizeParams

    stylizer = Stylizer(cfg)
    ch = load_character(character, cfg)
    f = stylizer.resolve_factors(StylizeParams(character=character), ch)
    s = LayerSettings(f["line"], f["texture"], f["color"])
    toon = Cartoonizer(ch)
    per = stylizer.perceive(photo)
    quiet = np.maximum(per.skin, face_region(photo.shape, per.faces))

    def f01(x):
        return x.astype(np.float32) / 255.0

    moved_quiet = shifted(quiet)
    moved_per = moved_perception(per)

    def teacher_with(x, moved=False):  # the whole teacher, but with the clean photo's perception
        from studio.stylize.classic import ClassicSettings

        settings = ClassicSettings.from_factors(f)
        out01, _, _ = stylizer.teacher("classic").render(f01(x), moved_per if moved else per, ch, settings,
                                                         params=StylizeParams(character=character), tone_fn=skin_tone)
        return np.clip(out01 * 255.0 + 0.5, 0, 255).astype(np.uint8)

    return {
        "teacher, clean perception": teacher_with,
        "abstract": lambda x, moved=False: abstract(f01(x), s.texture),
        "shade": lambda x, moved=False: colorize(abstract(f01(x), s.texture), s.color, toon.palette,
                                                 saturation=ch.shading.saturation, k=14),  # abstract, then colorize
        # the clean photo's skin and faces (moved with the photo when it is shifted)
        "ink alpha": lambda x, moved=False: toon.lines(f01(x), s, quiet=moved_quiet if moved else quiet),
    }


def main(argv=None) -> int:
    from studio.color import shrink
    from studio.config import load_config
    from studio.io import load_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--photos", type=int, default=len(PHOTOS))
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--character", default="classic")
    ap.add_argument("--stages", action="store_true", help="also each step of the person layer alone")
    args = ap.parse_args(argv)
    cfg = load_config()
    teacher = full_teacher(cfg, args.character)
    rows = []
    for name in PHOTOS[:args.photos]:
        photo = shrink(load_image(args.media / "images" / name), args.side)[0]
        fns = {"teacher": teacher}
        if args.stages:
            fns.update(stage_functions(cfg, args.character, photo))
        row = {"photo": name}
        for stage, fn in fns.items():
            clean = fn(photo)
            row[f"{stage} noise"] = psnr(clean, fn(noisy(photo)))
            row[f"{stage} shift"] = psnr(crop(clean), back(fn(shifted(photo), moved=True)))
        rows.append(row)
        print(" | ".join([name] + [f"{k} {v:.1f}" for k, v in row.items() if k != "photo"]), flush=True)
    keys = [k for k in rows[0] if k != "photo"]
    print()
    print("| " + " | ".join(["measure"] + keys) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for label, agg in (("worst", np.min), ("median", np.median)):
        print("| " + " | ".join([label] + [f"{agg([r[k] for r in rows]):.1f}" for k in keys]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
