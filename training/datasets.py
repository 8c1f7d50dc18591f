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

from studio.io import IMAGE_SUFFIXES, TMP_PREFIX
from studio.models import STUDENT_FACTORS


class ImageFolderDataset:
    """Every image file under the folders (recursively, sorted), with sizes read from the file header."""

    def __init__(self, folders: Sequence[Path], min_side: int = 64):
        files = []
        for folder in folders:
            folder = Path(folder)
            if not folder.is_dir():
                raise ValueError(f"{folder}: not a folder")
            files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                            and not any(part.startswith(TMP_PREFIX) for part in p.relative_to(folder).parts))
        self.files = [p for p in files if min(self.size_of(p)) >= min_side]
        self.skipped = [p for p in files if p not in self.files]  # unreadable or too small
        if not self.files:
            raise ValueError(f"no readable images of at least {min_side} px in {', '.join(map(str, folders))}")

    @staticmethod
    def size_of(path: Path) -> tuple[int, int]:
        """The image's size, (0, 0) when it does not decode to the end (a truncated upload)."""
        try:
            with Image.open(path) as im:
                size = im.size
                im.draft("RGB", (size[0] // 8, size[1] // 8))  # JPEG: decoded at 1/8 scale, still to its last byte
                im.load()
                return size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return (0, 0)

    @staticmethod
    def random_crop(w: int, h: int, rng: random.Random) -> tuple[int, int, int]:
        """A square crop covering 45-100 % of the short side (scale variety: faces near and far)."""
        side = max(16, int(min(w, h) * rng.uniform(0.45, 1.0)))
        return rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1), side


def sample_augment(rng: random.Random) -> dict:
    """One crop's variation for make_pairs --augment: mirrored half the time; four crops in five get new light
    (exposure as a gamma of 0.65-1.45, contrast 0.8-1.2, white balance from cool -0.12 to warm +0.12, saturation
    0.7-1.3), the fifth keeps the photo's own."""
    aug = {"flip": rng.random() < 0.5}
    if rng.random() < 0.8:
        aug.update(gamma=round(2 ** rng.uniform(-0.62, 0.54), 3), contrast=round(rng.uniform(0.8, 1.2), 3),
                   warmth=round(rng.uniform(-0.12, 0.12), 3), saturation=round(rng.uniform(0.7, 1.3), 3))
    return aug


def augment_photo(img: np.ndarray, aug: dict) -> np.ndarray:
    """RGB uint8 with `aug` (sample_augment's keys; a missing one changes nothing) applied: mirrored, then
    exposure (gamma: < 1 brighter), contrast about the mean grey, white balance (warmth > 0: more red, less blue)
    and saturation (about each pixel's grey)."""
    out = img[:, ::-1] if aug.get("flip") else img
    x = out.astype(np.float32) / 255.0
    if "gamma" in aug:
        x = np.power(x, float(aug["gamma"]))
    if "contrast" in aug:
        x = (x - x.mean()) * float(aug["contrast"]) + x.mean()
    if "warmth" in aug:
        w = float(aug["warmth"])
        x = x * np.array([1.0 + w, 1.0, 1.0 - w], np.float32)
    if "saturation" in aug:
        grey = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        x = grey + (x - grey) * float(aug["saturation"])
    return np.ascontiguousarray(np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _held_out(key: str, fraction: float) -> bool:
    return (zlib.crc32(key.encode()) % 1000) < fraction * 1000


class PairDataset:
    """Pairs from a make_pairs folder: (photo, target) float32 HWC in [0, 1] and the student's factors.

    The held-out split is by source photo when the pairs come from at least `MIN_SOURCES` photos (so the
    fidelity report is on photos the student never saw), else by pair id (a few uploaded photos)."""

    FACTORS = STUDENT_FACTORS
    MIN_SOURCES = 5
    CACHE_BYTES = 4 << 30

    def __init__(self, folder: Path, split: str = "train", holdout: float = 0.1):
        folder = Path(folder)
        rows = []
        for line in (folder / "manifest.jsonl").read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (folder / f"{row['id']}_out.png").is_file():
                rows.append(row)
        by_source = len({Path(r["source"]).name for r in rows}) >= self.MIN_SOURCES
        self.held_out_by = "source photo" if by_source else "pair"
        key = (lambda r: Path(r["source"]).name) if by_source else (lambda r: r["id"])
        self.folder, self._cache, self._cached_bytes = folder, {}, 0
        self.rows = [r for r in rows if _held_out(key(r), holdout) == (split == "val")]

    def __len__(self) -> int:
        return len(self.rows)

    def pair_u8(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(photo, target) as uint8 HWC, decoded once and kept while the cache is under CACHE_BYTES: training
        draws every pair thousands of times, and decoding two PNGs per draw costs more than a CPU step."""
        if i in self._cache:
            return self._cache[i]
        row = self.rows[i]
        pair = tuple(np.asarray(Image.open(self.folder / f"{row['id']}_{s}.png").convert("RGB")) for s in ("in", "out"))
        size = pair[0].nbytes + pair[1].nbytes
        if self._cached_bytes + size <= self.CACHE_BYTES:
            self._cache[i] = pair
            self._cached_bytes += size
        return pair

    def factors(self, i: int) -> np.ndarray:
        return np.array([self.rows[i]["factors"][k] for k in self.FACTORS], np.float32)

    def __getitem__(self, i: int):
        x, y = self.pair_u8(i)
        return x.astype(np.float32) / 255.0, y.astype(np.float32) / 255.0, self.factors(i)


def pair_splits(folder: Path) -> tuple[PairDataset, PairDataset, str]:
    """A make_pairs folder's training and held-out pairs, and what the held-out ones are ("held-out (by source
    photo)"; a tiny set with nothing held out is reported on its training pairs, and says so: "train"). ValueError
    when there are no training pairs."""
    train, val = PairDataset(Path(folder), "train"), PairDataset(Path(folder), "val")
    if len(train) == 0:
        raise ValueError(f"no training pairs in {folder} (run training.make_pairs first)")
    return (train, val, f"held-out (by {train.held_out_by})") if len(val) else (train, train, "train")
