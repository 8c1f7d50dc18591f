"""Quality benchmark of the photo path: do people stay themselves? Prints a Markdown table per character.

    python -m studio.quality                               # every shared photo with faces, every built-in character
    python -m studio.quality --warp 0 --json --out out/quality   # + one JSON line per photo and contact sheets
    python -m studio.quality --photos portrait_dark_skin_01.jpg --characters classic

Measured with yardstick models that are not the studio's own (dlib's HOG face detector, 68-point landmarks and
ResNet face descriptor, 99.4 % on LFW; from `dlib-bin` + `face-recognition-models`, requirements-test.txt; the
product never imports them). For each face dlib finds in the photo:
- identity: the descriptor distance between the face in the photo and in the output (same box; < 0.6 is dlib's
  "same person"), and the share of faces under it;
- found again: whether dlib's detector finds a face in the output where the photo has one (IoU > 0.3);
- skin shift: the median CIE L* of the face's skin (inside the jaw and brow outline, eyes, brows, nostrils and
  mouth left out) in the output minus in the photo.
For each output: the flat share (pixels whose grey Laplacian magnitude is under 2: how cel-like it is) and the ink
share (pixels at least 60 grey levels darker than their 7x7 median: drawn lines). Photos are fitted to `--side` px
(long side) first, as a user's upload would be processed at that size.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from . import StylizeParams, Stylizer, load_config
from .characters import list_characters
from .color import rgb_to_lab, shrink
from .io import ImageLoadError, load_image, save_image
from .types import Box

SAME_PERSON = 0.6  # dlib's threshold for its 128-D descriptor
FLAT_LAPLACIAN = 2.0
INK_DROP = 60
DEFAULT_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "data"


class YardstickMissing(RuntimeError):
    """dlib or its models are not installed (requirements-test.txt)."""


class Yardstick:
    """dlib's detector, landmarks and descriptor, loaded once."""

    def __init__(self):
        try:
            import dlib
        except ImportError as exc:
            raise YardstickMissing(f"the yardstick needs dlib ({exc}): pip install -r requirements-test.txt") from None
        spec = importlib.util.find_spec("face_recognition_models")  # its __init__ needs pkg_resources: not run
        if spec is None or not spec.submodule_search_locations:
            raise YardstickMissing("the yardstick needs face-recognition-models: pip install -r requirements-test.txt")
        models = Path(spec.submodule_search_locations[0]) / "models"
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def faces(self, image: np.ndarray, upsample: int = 1) -> list:
        return list(self.detector(image, upsample))

    def shape(self, image: np.ndarray, rect):
        return self.landmarks(image, rect)

    def descriptor(self, image: np.ndarray, shape) -> np.ndarray:
        return np.asarray(self.encoder.compute_face_descriptor(image, shape, 1), np.float32)


def _box(rect) -> Box:
    """A dlib rectangle (inclusive right and bottom) as a studio Box."""
    return Box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)


def skin_region(shape, size: tuple[int, int]) -> np.ndarray:
    """The face's skin from the 68 landmarks: inside the jaw line and the brows, without eyes, brows, nostrils and
    mouth (each dilated a little). (H, W) bool."""
    pts = np.array([(p.x, p.y) for p in shape.parts()], np.int32)
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.vstack([pts[0:17], pts[17:27]])), 1)
    holes = np.zeros_like(mask)
    for idx in (range(36, 42), range(42, 48), range(48, 60), range(31, 36), range(17, 22), range(22, 27)):
        cv2.fillConvexPoly(holes, cv2.convexHull(pts[list(idx)]), 1)
    eye_w = max(2, int(np.linalg.norm(pts[39] - pts[36]) * 0.35))
    holes = cv2.dilate(holes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * eye_w + 1, 2 * eye_w + 1)))
    return (mask > 0) & (holes == 0)


def flat_share(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float((np.abs(cv2.Laplacian(grey, cv2.CV_32F)) < FLAT_LAPLACIAN).mean())


def ink_share(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float((cv2.medianBlur(grey, 7).astype(np.int16) - grey >= INK_DROP).mean())


@dataclass
class FaceScore:
    distance: float  # descriptor distance photo -> output
    found: bool  # the detector finds it again in the output
    skin_shift: Optional[float]  # median L* output - photo (None: too little skin visible)
    width: int  # face box width in px


@dataclass
class PhotoScore:
    photo: str
    character: str
    faces: list[FaceScore] = field(default_factory=list)
    flat: float = 0.0
    ink: float = 0.0
    seconds: float = 0.0


def score(yard: Yardstick, photo: np.ndarray, output: np.ndarray, rects: Sequence) -> list[FaceScore]:
    """The faces `rects` (dlib rectangles found in `photo`) scored in `output` (same size)."""
    found = [_box(f) for f in yard.faces(output)] if rects else []
    photo_L, out_L = rgb_to_lab(photo)[..., 0], rgb_to_lab(output)[..., 0]
    out = []
    for r in rects:
        shape_in = yard.shape(photo, r)
        shape_out = yard.shape(output, r)
        d = float(np.linalg.norm(yard.descriptor(photo, shape_in) - yard.descriptor(output, shape_out)))
        skin = skin_region(shape_in, photo.shape[:2])
        shift = float(np.median(out_L[skin]) - np.median(photo_L[skin])) if skin.sum() >= 50 else None
        out.append(FaceScore(d, any(_box(r).iou(f) > 0.3 for f in found), shift, int(r.width())))
    return out


def photos_with_faces(media: Path, yard: Yardstick, names: Optional[Sequence[str]], side: int) -> list:
    """(name, image fitted to `side`, dlib face rectangles) for each photo where dlib finds a face; a file that is not
    a readable image gets an `error:` line on stderr."""
    folder = media / "images"
    files = [folder / n for n in names] if names else sorted(p for p in folder.iterdir() if p.is_file()
                                                             and p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    found = []
    for path in files:
        try:
            img, _ = shrink(load_image(path), side)
        except ImageLoadError as exc:  # one line, and the other photos are still measured
            print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
            continue
        rects = yard.faces(img)
        if rects:
            found.append((path.name, img, rects))
    return found


def summary(scores: list[PhotoScore]) -> dict:
    faces = [f for s in scores for f in s.faces]
    shifts = [f.skin_shift for f in faces if f.skin_shift is not None]
    return {"photos": len(scores), "faces": len(faces),
            "identity": sum(f.distance < SAME_PERSON for f in faces) / max(1, len(faces)),
            "distance_median": statistics.median(f.distance for f in faces) if faces else float("nan"),
            "found_again": sum(f.found for f in faces) / max(1, len(faces)),
            "skin_shift_median": statistics.median(shifts) if shifts else float("nan"),
            "skin_shift_worst": max(shifts, key=abs) if shifts else float("nan"),
            "flat": statistics.mean(s.flat for s in scores) if scores else float("nan"),
            "ink": statistics.mean(s.ink for s in scores) if scores else float("nan"),
            "seconds_per_photo": statistics.mean(s.seconds for s in scores) if scores else float("nan")}


def run(photos: list, characters: Sequence[str], yard: Yardstick, stylizer: Stylizer, warp: Optional[float] = None,
        on_photo=None) -> dict[str, list[PhotoScore]]:
    """Stylise each photo with each character and score it; `on_photo(score, output)` after each."""
    results: dict[str, list[PhotoScore]] = {c: [] for c in characters}
    for name, img, rects in photos:
        for ch in characters:
            t0 = time.perf_counter()
            out = stylizer(img, StylizeParams(character=ch, warp=warp)).image
            s = PhotoScore(name, ch, score(yard, img, out, rects), flat_share(out), ink_share(out),
                           time.perf_counter() - t0)
            results[ch].append(s)
            if on_photo:
                on_photo(s, out)
    return results


def table(results: dict[str, list[PhotoScore]]) -> str:
    lines = ["| character | photos | faces | identity (d < 0.6) | median d | found again | skin ΔL* median | "
             "worst | flat share | ink share | s/photo |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for ch, scores in results.items():
        m = summary(scores)
        lines.append(f"| {ch} | {m['photos']} | {m['faces']} | {m['identity']:.0%} | {m['distance_median']:.3f} | "
                     f"{m['found_again']:.0%} | {m['skin_shift_median']:+.1f} | {m['skin_shift_worst']:+.1f} | "
                     f"{m['flat']:.3f} | {m['ink']:.3f} | {m['seconds_per_photo']:.2f} |")
    return "\n".join(lines)


def cell(img: np.ndarray, side: int, label: str) -> np.ndarray:
    """The image fitted into a `side` px square on white, with a label above (a contact sheet cell)."""
    h, w = img.shape[:2]
    k = side / max(h, w)
    img = cv2.resize(img, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    out = np.full((side + 22, side, 3), 255, np.uint8)
    y, x = (side - img.shape[0]) // 2 + 22, (side - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    cv2.putText(out, label[:52], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (20, 20, 20), 1, cv2.LINE_AA)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", default=os.environ.get("TEST_MEDIA_DIR", str(DEFAULT_MEDIA)),
                    help="the shared data folder (images/ inside)")
    ap.add_argument("--photos", nargs="*", help="file names in <media>/images (default: every photo with a face)")
    ap.add_argument("--characters", nargs="*", help="default: every built-in character")
    ap.add_argument("--warp", type=float, default=None, help="the warp factor for every character (default: each "
                                                             "character's own)")
    ap.add_argument("--side", type=int, default=1024, help="photos are fitted to this long side first")
    ap.add_argument("--json", action="store_true", help="one JSON object per photo and character, then the summary")
    ap.add_argument("--out", help="folder for the contact sheets (one PNG per 8 photos: photo | each character)")
    args = ap.parse_args(argv)
    try:
        yard = Yardstick()
    except YardstickMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = load_config()
    characters = args.characters or [c.name for c in list_characters(cfg)]
    photos = photos_with_faces(Path(args.media), yard, args.photos, args.side)
    if not photos:
        print("error: no photo with a face found", file=sys.stderr)
        return 2
    rows: dict[str, list] = {}

    def on_photo(s: PhotoScore, out: np.ndarray):
        if args.json:
            print(json.dumps(asdict(s)), flush=True)
        if args.out:
            ids = ", ".join(f"{f.distance:.2f}" for f in s.faces)
            rows.setdefault(s.photo, []).append(cell(out, 300, f"{s.character} d {ids}"))
        print(f"{s.photo} {s.character}: " + " ".join(f"{f.distance:.2f}" for f in s.faces), file=sys.stderr)

    results = run(photos, characters, yard, Stylizer(cfg), args.warp, on_photo)
    if args.out:
        out = Path(args.out)
        by_name = {name: img for name, img, _ in photos}
        sheet = [np.hstack([cell(by_name[name], 300, name)] + cells) for name, cells in rows.items()]
        for i in range(0, len(sheet), 8):
            save_image(np.vstack(sheet[i:i + 8]), out / f"quality_{i // 8:02d}.png")
    if args.json:
        print(json.dumps({c: summary(s) for c, s in results.items()}))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
