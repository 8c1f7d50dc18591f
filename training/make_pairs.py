"""Teacher → paired data for the student: photo crops and their stylised targets, with sampled factors.

    python -m training.make_pairs --images ../shared/data/images --out pairs/classic --character classic \
        --pairs 2000 [--size 256] [--teacher classic] [--seed 0] [--ray] [--workers 2] [--fix warp=0] [--augment]

Each pair is `<out>/<id>_in.png` (the photo crop, face-warped as the teacher warps it) and `<out>/<id>_out.png`
(the teacher's result on it),
with one JSON line in `<out>/manifest.jsonl`: id, source image, crop, character, teacher, factor values and
the hash of the config that made it. Factors are sampled per pair (uniform in [0, 1]) so the student learns
them. A re-run skips the ids already in the manifest (resumable after a crash; the manifest line is
written only after both PNGs). `--ray` spreads the work over Ray actors (one Stylizer per worker); the
default runs locally with no Ray process, and both give the same files.

Crops are squares of 45-100 % of the short side (scale: faces near and far). `--augment` also varies each crop
before the teacher sees it (training.datasets.augment_photo, sampled per pair from the seed and written in the
manifest): a mirror image (pose), exposure and contrast (lighting), white balance (warm to cool light) and
saturation, so that a few dozen photos show the student more lighting than they hold.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2

from studio import StudioConfig, Stylizer, load_config
from studio.actors import ray_session, run_on_actors, start_actors
from studio.checks import FACTOR, PAIR_SIZE, PAIRS, SEED, WORKERS
from studio.types import FACTORS, StylizeParams

from . import progress_bar
from .datasets import ImageFolderDataset, augment_photo, sample_augment


@dataclass(frozen=True)
class PairsConfig:
    images: tuple[str, ...]
    out: str
    character: str = "classic"
    teacher: str = "classic"
    pairs: int = 1000
    size: int = 256
    seed: int = 0
    ray: bool = False
    workers: int = 2
    fixed: tuple[tuple[str, float], ...] = ()  # factors held at a value instead of sampled, e.g. (("warp", 0.0),)
    augment: bool = False  # vary each crop's pose and light before the teacher (training.datasets.augment_photo)

    def digest(self) -> str:
        keep = {k: v for k, v in asdict(self).items() if k not in ("out", "pairs", "ray", "workers")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PairSpec:
    id: str
    source: str
    crop: tuple[int, int, int]  # x, y, side in source pixels
    factors: dict
    augment: Optional[dict] = None  # training.datasets.augment_photo's parameters, when augmenting


def plan(cfg: PairsConfig, dataset: ImageFolderDataset) -> list[PairSpec]:
    """The full, deterministic list of pairs for this config (same seed → same pairs)."""
    rng = random.Random(cfg.seed)
    specs = []
    for i in range(cfg.pairs):
        path = dataset.files[i % len(dataset.files)]
        w, h = dataset.size_of(path)
        crop = dataset.random_crop(w, h, rng)
        factors = {k: round(rng.random(), 3) for k in FACTORS}
        factors.update(dict(cfg.fixed))
        augment = sample_augment(rng) if cfg.augment else None  # drawn last: plans without it stay as they were
        specs.append(PairSpec(f"{i:06d}", str(path), crop, factors, augment))
    return specs


def render_pair(stylizer, spec: PairSpec, cfg: PairsConfig, out: Path) -> dict:
    from studio.io import load_image, save_image

    img = load_image(spec.source)
    x, y, side = spec.crop
    photo = cv2.resize(img[y:y + side, x:x + side], (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
    if spec.augment:
        photo = augment_photo(photo, spec.augment)
    params = StylizeParams(character=cfg.character, teacher=cfg.teacher, **spec.factors)
    result = stylizer(photo, params)
    # The student's input is the photo after the face warp: the realtime path warps faces geometrically before
    # the student (exact, from the landmarks it tracks anyway), so the student learns the photometric style
    # alone. Same backend and image as the teacher's own perception, so the same faces and the same field.
    if spec.factors.get("warp", 0.0) > 0.0:
        from studio.perception import get_face_backend
        from studio.stylize.face_warp import warp_field

        faces = get_face_backend(stylizer.cfg.perception.face_backend, stylizer.cfg.perception).detect(photo)
        photo = warp_field(photo.shape, faces, stylizer.character(cfg.character).geometry,
                           spec.factors["warp"]).apply(photo)
    save_image(photo, out / f"{spec.id}_in.png")
    save_image(result.image, out / f"{spec.id}_out.png")
    return {"id": spec.id, "source": spec.source, "crop": list(spec.crop), "character": cfg.character,
            "teacher": cfg.teacher, "factors": spec.factors, "faces": len(result.faces), "config": cfg.digest(),
            **({"augment": spec.augment} if spec.augment else {})}


def done_ids(out: Path) -> set[str]:
    manifest = out / "manifest.jsonl"
    if not manifest.is_file():
        return set()
    ids = set()
    for line in manifest.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a crash
            continue
        if (out / f"{row['id']}_in.png").is_file() and (out / f"{row['id']}_out.png").is_file():
            ids.add(row["id"])
    return ids


def make_pairs(cfg: PairsConfig, studio_cfg: StudioConfig,
               on_progress: Optional[Callable[[int, int, dict], None]] = None,
               should_stop: Callable[[], bool] = lambda: False) -> Path:
    """Write the pairs (skipping those already done) with the teacher of the studio config `studio_cfg` (its
    characters, data folder and perception); stops cleanly between pairs when `should_stop()`."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = ImageFolderDataset([Path(p) for p in cfg.images])
    todo = [s for s in plan(cfg, dataset) if s.id not in done_ids(out)]
    (out / "pairs_config.json").write_text(json.dumps({**asdict(cfg), "config": cfg.digest()}, indent=2))
    total, finished = cfg.pairs, cfg.pairs - len(todo)
    with open(out / "manifest.jsonl", "a", encoding="utf-8") as manifest:
        for row in _run(cfg, studio_cfg, todo, out):
            if should_stop():
                break
            manifest.write(json.dumps(row) + "\n")
            manifest.flush()
            finished += 1
            if on_progress:
                on_progress(finished, total, row)
    return out


class PairWorker:
    """One Stylizer, built once, making the pairs handed to it: a Ray actor of `make_pairs(..., ray=True)`."""

    def __init__(self, studio_cfg: StudioConfig, cfg: PairsConfig, out: str):
        self.stylizer, self.cfg, self.out = Stylizer(studio_cfg), cfg, Path(out)

    def run(self, spec: PairSpec) -> dict:
        return render_pair(self.stylizer, spec, self.cfg, self.out)


def _run(cfg: PairsConfig, studio_cfg: StudioConfig, todo: list[PairSpec], out: Path):
    if not todo:
        return
    if not cfg.ray:
        stylizer = Stylizer(studio_cfg)
        for spec in todo:
            yield render_pair(stylizer, spec, cfg, out)
        return
    # Ray started here is shut down here, also when the caller stops early (this generator is closed)
    with ray_session(num_cpus=cfg.workers):
        pool = start_actors(PairWorker, (studio_cfg, cfg, str(out)), cfg.workers)
        for spec, row, why in run_on_actors(todo, pool, lambda actor, spec: actor.run.remote(spec)):
            if why is not None:
                raise RuntimeError(f"pair {spec.id} ({spec.source}): {why}")
            yield row


def parse_args(argv=None) -> PairsConfig:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+", required=True, help="image folders (FFHQ/SHHQ/LSUN-style or your own)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--character", default="classic")
    ap.add_argument("--teacher", default="classic")
    ap.add_argument("--pairs", type=PAIRS.arg("--pairs"), default=1000)
    ap.add_argument("--size", type=PAIR_SIZE.arg("--size"), default=256)
    ap.add_argument("--seed", type=SEED.arg("--seed"), default=0)
    ap.add_argument("--ray", action="store_true", help="spread over Ray actors (pip install ray)")
    ap.add_argument("--workers", type=WORKERS.arg("--workers"), default=2)
    ap.add_argument("--augment", action="store_true",
                    help="vary each crop's pose and light before the teacher: mirror, exposure, contrast, white "
                         "balance, saturation (sampled per pair from the seed, written in the manifest)")
    ap.add_argument("--fix", action="append", default=[], metavar="FACTOR=VALUE",
                    help="hold a factor at a value instead of sampling it (e.g. warp=0), repeatable")
    a = ap.parse_args(argv)
    fixed = []
    for item in a.fix:
        key, _, value = item.partition("=")
        try:
            if key not in FACTORS:
                raise ValueError(f"expected {'|'.join(FACTORS)}=VALUE")
            fixed.append((key, FACTOR.check(key, value)))
        except ValueError as exc:
            ap.error(f"--fix {item!r}: {exc}")
    return PairsConfig(images=tuple(a.images), out=a.out, character=a.character, teacher=a.teacher, pairs=a.pairs,
                       size=a.size, seed=a.seed, ray=a.ray, workers=a.workers, fixed=tuple(fixed), augment=a.augment)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    bar, progress = progress_bar(cfg.pairs, "pairs", unit="pair")
    make_pairs(cfg, load_config(), progress)
    bar.close()
    print(cfg.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
