"""Training jobs for the studio: LoRA training and distillation in a background studio.jobs.Job, with progress
and cancel.

    job = start_lora_job(cfg, kind="user", name="ana", images=[...paths...], steps=400)
    job = start_distill_job(cfg, character="classic", images=[...paths...], pairs=500, steps=2000)
    job.state()  -> studio.jobs.JobState(status, step, total, loss, message, result)
    job.cancel() -> the loop stops at the next step and keeps a checkpoint; start again with resume=True

Uploaded images are copied into `<data_dir>/datasets/<kind>/<name>/`; the LoRA goes to
`<data_dir>/loras/<kind>/<name>/lora.safetensors`. Names are sanitised before they touch a path.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional, Sequence

import yaml

from studio.characters import load_character
from studio.checks import DISTILL_STEPS, LORA_RANK, LORA_RESOLUTION, LORA_STEPS, PAIR_SIZE, PAIRS
from studio.config import StudioConfig
from studio.io import IMAGE_SUFFIXES, ImageLoadError, atomic_path, atomic_write, load_image, safe_name
from studio.jobs import Job

from .distill import DistillConfig, distill
from .train_lora import TrainLoraConfig, train

log = logging.getLogger(__name__)

MAX_IMAGES = 200
MAX_IMAGE_BYTES = 30 * 1024 * 1024


def lora_dir(cfg: StudioConfig, kind: str, name: str) -> Path:
    if kind not in ("user", "character"):
        raise ValueError(f"kind must be user or character, got {kind!r}")
    return cfg.resolve(cfg.data_dir) / "loras" / kind / safe_name(name)


def list_loras(cfg: StudioConfig) -> list[Path]:
    """Every finished LoRA under the data folder, and every character's own LoRA."""
    root = cfg.resolve(cfg.data_dir)
    found = sorted((root / "loras").glob("*/*/lora.safetensors"))
    found += sorted((root / "characters").glob("*/lora.safetensors"))
    return found


def import_images(cfg: StudioConfig, kind: str, name: str, files: Sequence[str]) -> Path:
    """The uploaded images become the dataset folder `<data_dir>/datasets/<kind>/<name>/`: each one is decoded first
    (bounded in count, bytes and pixels) and only those that decode are kept, so a truncated upload cannot fail
    this job or a later one. The folder is filled aside and then replaces the earlier one whole: a job trains on
    exactly what was uploaded for it. Nothing usable: a one-line ValueError, and the earlier photos stay."""
    dest = cfg.resolve(cfg.data_dir) / "datasets" / kind / safe_name(name)
    taken, refused = 0, []
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for f in files:
            p = Path(f)
            if taken >= MAX_IMAGES:
                break
            try:
                if p.suffix.lower() not in IMAGE_SUFFIXES or p.stat().st_size > MAX_IMAGE_BYTES:
                    raise ImageLoadError(f"{p.name}: not an image file under {MAX_IMAGE_BYTES >> 20} MB")
                load_image(p, max_pixels=cfg.max_input_pixels)
            except (ImageLoadError, OSError):
                refused.append(p.name)
                continue
            shutil.copy(p, tmp / f"{taken:04d}-{safe_name(p.stem)}{p.suffix.lower()}")
            taken += 1
        if taken == 0:
            raise ValueError(f"none of the {len(refused)} file(s) is a readable image (jpg, png, webp, bmp, tiff "
                             f"under {MAX_IMAGE_BYTES >> 20} MB)")
    if refused:
        log.warning("%s/%s: kept %d image(s), skipped %d that could not be read: %s", kind, name, taken, len(refused),
                    ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else ""))
    return dest


def clear_images(cfg: StudioConfig, kind: str, name: str) -> int:
    """Remove the dataset folder `<data_dir>/datasets/<kind>/<name>/`; returns how many images it held."""
    dest = cfg.resolve(cfg.data_dir) / "datasets" / kind / safe_name(name)
    if not dest.is_dir():
        return 0
    n = sum(1 for p in dest.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    shutil.rmtree(dest)
    return n


def attach_to_character(train_cfg, lora: Path) -> Optional[Path]:
    """A character LoRA becomes the character's own (its folder's lora.safetensors) when that character exists."""
    if train_cfg.kind != "character":
        return None
    data_dir = Path(train_cfg.output).parents[2]  # <data_dir>/loras/character/<name>
    folder = data_dir / "characters" / Path(train_cfg.output).name
    preset = folder / "character.yaml"
    if not preset.is_file():
        return None
    with atomic_path(folder / "lora.safetensors") as tmp:
        shutil.copy(lora, tmp)
    data = yaml.safe_load(preset.read_text(encoding="utf-8")) or {}
    data["lora"] = "lora.safetensors"
    atomic_write(preset, yaml.safe_dump(data, sort_keys=False))
    return folder


def start_lora_job(cfg: StudioConfig, *, kind: str, name: str, images: Sequence[str] = (), steps: int = 400,
                   rank: int = 8, base: Optional[str] = None, resume: bool = False, resolution: int = 512,
                   lr: float = 1e-4, checkpoint_every: int = 50) -> Job:
    steps, rank = LORA_STEPS.check("steps", steps), LORA_RANK.check("rank", rank)
    resolution = LORA_RESOLUTION.check("resolution", resolution)
    data = import_images(cfg, kind, name, images) if images else \
        cfg.resolve(cfg.data_dir) / "datasets" / kind / safe_name(name)
    train_cfg = TrainLoraConfig(base=base or cfg.sd.base, images=str(data), output=str(lora_dir(cfg, kind, name)),
                                steps=int(steps), rank=int(rank), kind=kind, resume=resume, resolution=resolution,
                                lr=lr, checkpoint_every=checkpoint_every, local_files_only=cfg.sd.local_files_only)

    def work(report, should_stop, log):
        path = train(train_cfg, on_progress=report, should_stop=should_stop, log=log, perception=cfg.perception)
        attached = attach_to_character(train_cfg, path)
        return path, f"saved {path}" + (f"; attached to the character in {attached}" if attached else "")

    return Job(work, train_cfg.steps, "lora-job").start()


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*") if p.is_file())


def start_distill_job(cfg: StudioConfig, *, character: str, images: Sequence[str] = (), pairs: int = 500,
                      steps: int = 2000, size: int = 384, teacher: str = "classic") -> Job:
    """Teacher pairs for the character, then a student: `<data_dir>/students/<character>/`. Same recipe as the
    shipped students (384-px pairs; warp 0, since the student path warps faces geometrically)."""
    from .make_pairs import PairsConfig, make_pairs

    pairs, steps, size = PAIRS.check("pairs", pairs), DISTILL_STEPS.check("steps", steps), PAIR_SIZE.check("size", size)
    load_character(character, cfg)  # a ValueError now, not a failed job later
    root = cfg.resolve(cfg.data_dir)
    name = safe_name(character)
    data = import_images(cfg, "distill", name, images) if images else root / "datasets" / "distill" / name
    if not images and not _has_images(data):
        raise ValueError(f"no photos to learn from for {character!r} yet: upload some (tens of photos of people, like "
                         f"the ones the student will draw), or put them in {data}")
    pairs_cfg = PairsConfig(images=(str(data),), out=str(root / "pairs" / name), character=character,
                            teacher=teacher, pairs=int(pairs), size=int(size), fixed=(("warp", 0.0),))
    distill_cfg = DistillConfig(pairs=pairs_cfg.out, out=str(root / "students" / name), steps=int(steps),
                                val_every=max(1, int(steps) // 10), resume=True)

    def work(report, should_stop, log):
        make_pairs(pairs_cfg, cfg, on_progress=lambda n, t, row: report(n, t, {}, "pairs"), should_stop=should_stop)
        if should_stop():
            return pairs_cfg.out, "stopped"
        out = distill(distill_cfg, on_progress=lambda s, t, i: report(s, t, i, i.get("phase", "training")), log=log,
                      should_stop=should_stop)
        return out, f"student saved in {out}"

    return Job(work, int(pairs), "distill-job", subject=character).start()
