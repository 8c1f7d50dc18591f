"""Image-folder datasets: FFHQ-, SHHQ- and LSUN-style folders (images at any depth), user folders, and
../shared/data; plus the paired dataset that make_pairs writes (photo crop, teacher target, factors).
"""
from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from studio.io import IMAGE_SUFFIXES


class ImageFolderDataset:
    """Every image file under the folders (recursively, sorted), with sizes read from the file header."""

    def __init__(self, folders: Sequence[Path], min_side: int = 64):
        files = []
        for folder in folders:
            folder = Path(folder)
            if not folder.is_dir():
                raise ValueError(f"{folder}: not a folder")
            files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        self.files = [p for p in files if min(self.size_of(p)) >= min_side]
        if not self.files:
            raise ValueError(f"no images of at least {min_side} px in {', '.join(map(str, folders))}")

    @staticmethod
    def size_of(path: Path) -> tuple[int, int]:
        try:
            with Image.open(path) as im:
                return im.size
        except OSError:
            return (0, 0)

    @staticmethod
    def random_crop(w: int, h: int, rng: random.Random) -> tuple[int, int, int]:
        """A square crop covering 45-100 % of the short side (scale variety: faces near and far)."""
        side = max(16, int(min(w, h) * rng.uniform(0.45, 1.0)))
        return rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1), side


def _held_out(pair_id: str, fraction: float) -> bool:
    return (zlib.crc32(pair_id.encode()) % 1000) < fraction * 1000


class PairDataset:
    """Pairs from a make_pairs folder: (photo, target) float32 HWC in [0, 1] and factors (4,)."""

    FACTORS = ("line", "texture", "color", "warp")

    def __init__(self, folder: Path, split: str = "train", holdout: float = 0.1):
        folder = Path(folder)
        rows = []
        for line in (folder / "manifest.jsonl").read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (folder / f"{row['id']}_out.png").is_file() and _held_out(row["id"], holdout) == (split == "val"):
                rows.append(row)
        self.folder, self.rows = folder, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = self.rows[i]
        load = lambda s: np.asarray(Image.open(self.folder / f"{row['id']}_{s}.png").convert("RGB"),  # noqa: E731
                                    dtype=np.float32) / 255.0
        factors = np.array([row["factors"][k] for k in self.FACTORS], np.float32)
        return load("in"), load("out"), factors
