"""Contact sheet: stylise photos with every character and tile them (original first) into one PNG.

    .venv/bin/python tools/contact_sheet.py --out out/contact_sheet.png [--photos a.jpg b.jpg ...] [--side 360]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio import StylizeParams, Stylizer, load_config  # noqa: E402
from studio.characters import list_characters  # noqa: E402
from studio.io import load_image, save_image  # noqa: E402
from studio.quality import cell  # noqa: E402

DEFAULT = ["portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg", "portrait_glasses_beard_brown_skin_01.jpg",
           "group_4faces_diverse_skin_01.jpg", "fullbody_crouching_brown_skin_01.jpg", "lowlight_face_01.jpg",
           "profile_faces_audience_blue_light_01.jpg", "bg_lake_mountains_01.jpg"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=os.environ.get("TEST_MEDIA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--photos", nargs="*", default=DEFAULT)
    ap.add_argument("--out", default="out/contact_sheet.png")
    ap.add_argument("--side", type=int, default=360)
    args = ap.parse_args()
    cfg = load_config()
    stylizer = Stylizer(cfg)
    chars = list_characters(cfg)
    rows = []
    for name in args.photos:
        img = load_image(Path(args.media) / "images" / name)
        row = [cell(img, args.side, name)]
        for ch in chars:
            res = stylizer(img, StylizeParams(character=ch.name))
            row.append(cell(res.image, args.side, f"{ch.name} ({len(res.faces)} faces)"))
        rows.append(np.hstack(row))
        print(name, flush=True)
    save_image(np.vstack(rows), args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
