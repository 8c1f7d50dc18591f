"""The photo set the shipped students are trained on: the permissively licensed photos of the test media, plus
frames from its clips, gathered into one folder (symbolic links and extracted JPEG frames).

    python -m training.photo_set --media ../shared/data --out /tmp/student-photos [--frames 8]

The licence of every file is read from the media folder's MANIFEST.md: rows whose licence says
"non-commercial" or "NC" are left out, so the students are not trained on the S-Lab or CC BY-NC-SA photos.
Each clip gives `--frames` evenly spaced frames. The output is an ordinary image folder for make_pairs.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import cv2

NON_COMMERCIAL = re.compile(r"non-commercial|\bNC\b|BY-NC", re.IGNORECASE)


def permissive_files(media: Path) -> list[Path]:
    """Media files whose MANIFEST.md row names a licence that allows commercial use, in manifest order."""
    manifest = media / "MANIFEST.md"
    if not manifest.is_file():
        raise ValueError(f"{manifest}: not found (the media folder needs its MANIFEST.md with the licences)")
    files = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith(("images/", "videos/")):
            continue
        if not NON_COMMERCIAL.search(cells[3]) and (media / cells[0]).is_file():
            files.append(media / cells[0])
    return files


def build(media: Path, out: Path, frames: int = 8) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src in permissive_files(media):
        if src.parent.name == "images":
            link = out / src.name
            if not link.exists():
                link.symlink_to(src.resolve())
            written.append(link)
            continue
        cap = cv2.VideoCapture(str(src))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for k in range(frames if n > 0 else 0):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int((k + 0.5) * n / frames))
            ok, frame = cap.read()
            if ok:
                dest = out / f"vid_{src.stem}_{k}.jpg"
                cv2.imwrite(str(dest), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                written.append(dest)
        cap.release()
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", default="../shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--frames", type=int, default=8, help="frames taken from each clip")
    a = ap.parse_args(argv)
    files = build(Path(a.media), Path(a.out), a.frames)
    print(f"{len(files)} images in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
