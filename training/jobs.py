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

import shutil
from pathlib import Path
from typing import Optional, Sequence

import yaml

from studio.config import StudioConfig
from studio.io import IMAGE_SUFFIXES, atomic_path, atomic_write, safe_name
from studio.jobs import Job

from .distill import DistillConfig, distill
from .train_lora import TrainLoraConfig, train

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
    """Copy uploaded images into the dataset folder (bounded in count and size; non-images are skipped)."""
    dest = cfg.resolve(cfg.data_dir) / "datasets" / kind / safe_name(name)
    dest.mkdir(parents=True, exist_ok=True)
    taken = 0
    for f in files:
        p = Path(f)
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file() or p.stat().st_size > MAX_IMAGE_BYTES:
            continue
        if taken >= MAX_IMAGES:
            break
        shutil.copy(p, dest / f"{taken:04d}-{safe_name(p.stem)}{p.suffix.lower()}")
        taken += 1
    if taken == 0 and not any(dest.iterdir()):
        raise ValueError("no usable images (jpg, png, webp, bmp, tiff under 30 MB)")
    return dest


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


def start_distill_job(cfg: StudioConfig, *, character: str, images: Sequence[str] = (), pairs: int = 500,
                      steps: int = 2000, size: int = 384, teacher: str = "classic") -> Job:
    """Teacher pairs for the character, then a student: `<data_dir>/students/<character>/`. Same recipe as the
    shipped students (384-px pairs; warp 0, since the student path warps faces geometrically)."""
    from .make_pairs import PairsConfig, make_pairs

    root = cfg.resolve(cfg.data_dir)
    name = safe_name(character)
    data = import_images(cfg, "distill", name, images) if images else root / "datasets" / "distill" / name
    pairs_cfg = PairsConfig(images=(str(data),), out=str(root / "pairs" / name), character=character,
                            teacher=teacher, pairs=int(pairs), size=int(size), fixed=(("warp", 0.0),))
    distill_cfg = DistillConfig(pairs=pairs_cfg.out, out=str(root / "students" / name), steps=int(steps),
                                val_every=max(1, int(steps) // 10), resume=True)

    def work(report, should_stop, log):
        make_pairs(pairs_cfg, cfg, on_progress=lambda n, t, row: report(n, t, {}, "pairs"), should_stop=should_stop)
        if should_stop():
            return pairs_cfg.out, "stopped"
        out = distill(distill_cfg, on_progress=lambda s, t, i: report(s, t, i, "training"), log=log,
                      should_stop=should_stop)
        return out, f"student saved in {out}"

    return Job(work, int(pairs), "distill-job").start()
