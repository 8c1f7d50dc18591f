"""DreamBooth-style LoRA training for a user (their photos) or a character (reference images).

    python -m training.train_lora --base PATH_OR_ID --images DIR --output DIR --steps N [--rank R]
        [--kind user|character] [--token sks] [--class-word person] [--resume] [--checkpoint-every 100]
        [--prior-images DIR] [--resolution 512] [--lr 1e-4] [--seed 0]

- user: faces are found, cropped and aligned (eyes level, face centred) by the studio's perception; photos
  without a face are skipped with a message. character: whole images, centre-cropped.
- Captions: "<token> <class>" (user: "a photo of sks person"; character: "sks character, webtoon style");
  a `<image>.txt` beside an image adds its own caption. Optional prior preservation with --prior-images.
- accelerate (fp16 mixed precision on CUDA), gradient checkpointing on CUDA, a checkpoint every N steps;
  `--resume` continues from the newest one, so a killed run loses at most the steps since it.
- Output in DIR: `lora.safetensors` (diffusers/peft keys: `pipe.load_lora_weights(DIR, weight_name=...)`),
  `lora_kohya.safetensors` (kohya/A1111 key naming, for the common SD UIs), both with the training metadata
  (base model, rank, steps, images hash) in the file header, and `train_config.json` (the resolved config).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from studio.checks import BATCH_SIZE, CHECKPOINT_EVERY, LEARNING_RATE, LORA_RANK, LORA_RESOLUTION, LORA_STEPS, SEED
from studio.config import PerceptionConfig, SDConfig, load_config
from studio.io import atomic_path, output_folder
from studio.jobs import Cancelled
from studio.perception.faces import LEFT_EYE, RIGHT_EYE

from . import progress_bar

ProgressFn = Callable[[int, int, dict], None]
TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
LORA_FILE, KOHYA_FILE = "lora.safetensors", "lora_kohya.safetensors"


@dataclass(frozen=True)
class TrainLoraConfig:
    base: str
    images: str
    output: str
    steps: int = 400
    rank: int = 8
    kind: str = "user"  # user | character
    token: str = "sks"
    class_word: str = ""  # default: "person" for users, "character" for characters
    resolution: int = 512
    lr: float = 1e-4
    batch_size: int = 1
    checkpoint_every: int = 100
    resume: bool = False
    prior_images: str = ""
    prior_weight: float = 1.0
    seed: int = 0
    local_files_only: bool = False


# ------------------------------------------------------------------------------------------- data
def _caption(cfg: TrainLoraConfig, path: Path) -> str:
    cls = cfg.class_word or ("person" if cfg.kind == "user" else "character")
    base = f"a photo of {cfg.token} {cls}" if cfg.kind == "user" else f"{cfg.token} {cls}, webtoon style"
    extra = path.with_suffix(".txt")
    if extra.is_file():
        text = extra.read_text(encoding="utf-8").strip().replace("\n", " ")[:300]
        if text:
            base = f"{base}, {text}"
    return base


def align_face(image: np.ndarray, face, size: int) -> Optional[np.ndarray]:
    """A square crop around the face, rotated so the eyes are level, about 2.2 face-heights wide."""
    lm = face.landmarks
    if face.has_mesh:
        le, re_ = lm[list(LEFT_EYE)].mean(0), lm[list(RIGHT_EYE)].mean(0)
        angle = float(np.degrees(np.arctan2(le[1] - re_[1], le[0] - re_[0])))
    else:
        angle = 0.0
    cx, cy = face.box.center
    side = 2.2 * max(face.box.width, face.box.height)
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[:, 2] += (size / 2 - cx, size / 2 - cy)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(image[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)


def load_training_images(cfg: TrainLoraConfig, folder: str, log=print, *, perception: Optional[PerceptionConfig] = None
                         ) -> tuple[list[np.ndarray], list[str], str]:
    """(images RGB uint8 at the resolution, captions, sha256 of the source files). A user LoRA's faces are found
    with the studio's `perception` settings."""
    from studio.io import ImageLoadError, iter_image_files, load_image

    files = iter_image_files([folder])
    if not files:
        raise ValueError(f"no images in {folder}")
    digest = hashlib.sha256()
    backend = None
    if cfg.kind == "user":
        from studio.perception.faces import get_face_backend

        if perception is None:
            raise ValueError("a user LoRA finds the faces: pass the studio's perception settings")
        backend = get_face_backend(perception.face_backend, perception)
    images, captions = [], []
    for path in files:
        try:
            img = load_image(path)
        except ImageLoadError as exc:
            log(f"skipped: {exc}")
            continue
        digest.update(path.read_bytes())
        if backend is not None:
            faces = backend.detect(img)
            if not faces:
                log(f"skipped: {path.name}: no face found")
                continue
            crop = align_face(img, max(faces, key=lambda f: f.box.area), cfg.resolution)
        else:
            crop = center_crop(img, cfg.resolution)
        images.append(crop)
        captions.append(_caption(cfg, path))
    if not images:
        raise ValueError(f"no usable images in {folder}")
    return images, captions, digest.hexdigest()


# ------------------------------------------------------------------------------------------- model
def load_components(cfg: TrainLoraConfig):
    """(pipeline, noise scheduler) from the base model: the same rules and errors as the SD teacher."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from studio.stylize.sd_teacher import check_base, is_offline, load_from

    offline = is_offline(SDConfig(local_files_only=cfg.local_files_only))
    check_base(cfg.base, offline)
    pipe = load_from(StableDiffusionPipeline, cfg.base, "Stable Diffusion base model", offline, safety_checker=None)
    noise = DDPMScheduler.from_config(pipe.scheduler.config)
    return pipe, noise


def add_lora(unet, rank: int) -> list:
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGET_MODULES))
    return [p for p in unet.parameters() if p.requires_grad]


def lora_state(unet) -> dict:
    """The UNet's LoRA weights with diffusers key names (`unet.…lora.down.weight`)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    return {f"unet.{k}": v.detach().float().cpu().contiguous() for k, v in layers.items()}


def to_kohya(state: dict, alpha: float) -> dict:
    """diffusers LoRA keys → kohya/A1111 (`lora_unet_<path>.lora_down.weight`, `.lora_up.weight`, `.alpha`)."""
    import torch

    out = {}
    for key, value in state.items():
        module, _, kind = key.removeprefix("unet.").rpartition(".lora.")
        name = "lora_unet_" + module.replace(".", "_")
        out[f"{name}.lora_{kind.split('.')[0]}.weight"] = value
        out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


# ------------------------------------------------------------------------------------------- loop
def encode_prompts(pipe, captions: list[str]):
    import torch

    ids = pipe.tokenizer(captions, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids.to(pipe.text_encoder.device))[0]


def diffusion_loss(pipe, noise_sched, pixels, embeds, generator=None):
    """The denoising loss of one batch (epsilon or v-prediction, as the scheduler says)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        latents = pipe.vae.encode(pixels).latent_dist.sample(generator) * pipe.vae.config.scaling_factor
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (latents.shape[0],), generator=generator,
                      device=latents.device).long()
    noisy = noise_sched.add_noise(latents, noise, t)
    pred = pipe.unet(noisy, t, embeds).sample
    target = noise_sched.get_velocity(latents, noise, t) if noise_sched.config.prediction_type == "v_prediction" else noise
    return F.mse_loss(pred.float(), target.float())


def to_pixels(images: list[np.ndarray]):
    import torch

    arr = np.stack(images).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(out: Path, step: int, unet, optimizer, keep: int = 2) -> Path:
    import torch
    from safetensors.torch import save_file

    ck = out / f"checkpoint-{step}"
    with atomic_path(ck) as tmp:
        tmp.mkdir()
        save_file(lora_state(unet), str(tmp / LORA_FILE))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")  # tensors and numbers only: reloaded weights_only
        (tmp / "state.json").write_text(json.dumps({"step": step}))
    for old in _checkpoints(out)[:-keep]:
        shutil.rmtree(old)
    return ck


def load_checkpoint(ck: Path, unet, optimizer) -> int:
    import torch
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = {k.removeprefix("unet."): v for k, v in load_file(str(ck / LORA_FILE)).items()}
    set_peft_model_state_dict(unet, convert_unet_state_dict_to_peft(state))
    optimizer.load_state_dict(torch.load(ck / "optimizer.pt", weights_only=True))
    return int(json.loads((ck / "state.json").read_text())["step"])


def train(cfg: TrainLoraConfig, on_progress: Optional[ProgressFn] = None, should_stop: Callable[[], bool] = lambda: False,
          log=print, *, perception: Optional[PerceptionConfig] = None) -> Path:
    """Train and save; returns the diffusers-format LoRA file. Raises Cancelled if stopped (checkpoint kept).
    `perception`: the studio's settings, with which a user LoRA's faces are found (the studio passes its own)."""
    import torch
    from accelerate import Accelerator
    from safetensors.torch import save_file

    from studio.stylize.sd_teacher import check_base, is_offline

    check_base(cfg.base, is_offline(SDConfig(local_files_only=cfg.local_files_only)))  # fail before the data work
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    # 1. Data.
    images, captions, images_hash = load_training_images(cfg, cfg.images, log, perception=perception)
    prior = load_training_images(TrainLoraConfig(**{**asdict(cfg), "kind": "character"}), cfg.prior_images, log) \
        if cfg.prior_images else None
    log(f"{len(images)} training images" + (f", {len(prior[0])} prior images" if prior else ""))
    # 2. Model: frozen base, LoRA on the UNet's attention.
    accelerator = Accelerator(mixed_precision="fp16" if torch.cuda.is_available() else "no")
    pipe, noise_sched = load_components(cfg)
    for module in (pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
    params = add_lora(pipe.unet, cfg.rank)
    if torch.cuda.is_available():
        pipe.unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-2)
    pipe.unet, optimizer = accelerator.prepare(pipe.unet, optimizer)
    device = accelerator.device
    pipe.vae.to(device)
    pipe.text_encoder.to(device)
    embeds = encode_prompts(pipe, captions)
    prior_embeds = encode_prompts(pipe, [f"a {cfg.class_word or 'person'}"] * len(prior[0])) if prior else None
    # 3. Resume from the newest checkpoint.
    step = 0
    if cfg.resume and _checkpoints(out):
        step = load_checkpoint(_checkpoints(out)[-1], accelerator.unwrap_model(pipe.unet), optimizer)
        log(f"resumed at step {step}")
    (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "images_sha256": images_hash,
                                                       "n_images": len(images)}, indent=2))
    # 4. Loop.
    pipe.unet.train()
    t0 = time.perf_counter()
    while step < cfg.steps:
        if should_stop():
            save_checkpoint(out, step, accelerator.unwrap_model(pipe.unet), optimizer)
            raise Cancelled(f"stopped at step {step}; --resume continues from there")
        idx = [random.randrange(len(images)) for _ in range(cfg.batch_size)]
        pixels = to_pixels([images[i] for i in idx]).to(device)
        with accelerator.accumulate(pipe.unet):
            loss = diffusion_loss(pipe, noise_sched, pixels, embeds[idx])
            if prior:
                j = [random.randrange(len(prior[0])) for _ in range(cfg.batch_size)]
                loss = loss + cfg.prior_weight * diffusion_loss(pipe, noise_sched, to_pixels([prior[0][i] for i in j]).to(device),
                                                                prior_embeds[j])
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        step += 1
        info = {"loss": float(loss.detach()), "steps_per_s": step / max(1e-6, time.perf_counter() - t0)}
        if on_progress:
            on_progress(step, cfg.steps, info)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
            save_checkpoint(out, step, accelerator.unwrap_model(pipe.unet), optimizer)
    # 5. Save both formats with the metadata in the header.
    state = lora_state(accelerator.unwrap_model(pipe.unet))
    meta = {"toonlab_kind": cfg.kind, "toonlab_token": cfg.token, "ss_base_model_version": "sd_v1",
            "ss_sd_model_name": cfg.base, "ss_network_module": "networks.lora", "ss_network_dim": str(cfg.rank),
            "ss_network_alpha": str(cfg.rank), "ss_max_train_steps": str(cfg.steps), "ss_steps": str(step),
            "ss_resolution": str(cfg.resolution), "toonlab_images_sha256": images_hash,
            "ss_num_train_images": str(len(images)), "format": "pt"}
    final = out / LORA_FILE
    with atomic_path(final) as tmp:
        save_file(state, str(tmp), metadata=meta)
    with atomic_path(out / KOHYA_FILE) as tmp:
        save_file(to_kohya(state, cfg.rank), str(tmp), metadata=meta)
    return final


def parse_args(argv=None) -> TrainLoraConfig:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="hub id, diffusers folder or .safetensors")
    ap.add_argument("--images", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--steps", type=LORA_STEPS.arg("--steps"), default=400)
    ap.add_argument("--rank", type=LORA_RANK.arg("--rank"), default=8)
    ap.add_argument("--kind", choices=["user", "character"], default="user")
    ap.add_argument("--token", default="sks")
    ap.add_argument("--class-word", default="")
    ap.add_argument("--resolution", type=LORA_RESOLUTION.arg("--resolution"), default=512)
    ap.add_argument("--lr", type=LEARNING_RATE.arg("--lr"), default=1e-4)
    ap.add_argument("--batch-size", type=BATCH_SIZE.arg("--batch-size"), default=1)
    ap.add_argument("--checkpoint-every", type=CHECKPOINT_EVERY.arg("--checkpoint-every"), default=100)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--prior-images", default="")
    ap.add_argument("--prior-weight", type=float, default=1.0)
    ap.add_argument("--seed", type=SEED.arg("--seed"), default=0)
    ap.add_argument("--local-files-only", action="store_true")
    a = ap.parse_args(argv)
    return TrainLoraConfig(**{k: v for k, v in vars(a).items()})


def main(argv=None) -> int:
    from tqdm import tqdm

    from studio.stylize.sd_teacher import SDModelMissing

    cfg = parse_args(argv)
    try:
        output_folder(cfg.output, "--output")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar, progress = progress_bar(cfg.steps, "LoRA")
    try:
        path = train(cfg, progress, log=lambda m: tqdm.write(m), perception=load_config().perception)
    except (SDModelMissing, ValueError, OSError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
