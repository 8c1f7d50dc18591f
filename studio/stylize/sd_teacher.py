"""The SD teacher (`--teacher sd`): Stable Diffusion img2img + ControlNet + stacked LoRAs, through diffusers.

    python -m studio stylize PHOTO --out DIR --teacher sd --base stable-diffusion-v1-5/stable-diffusion-v1-5 \
        --lora character.safetensors:0.8 --lora me.safetensors:0.6 --strength 0.45 --steps 20 --seed 1

- Base model (`sd.base` or `--base`): a hub id, a local diffusers folder, or a single `.safetensors`
  checkpoint; SD 1.5- and SDXL-class (read from `model_index.json`, or `sd.family` style names in the file
  name for single files). Offline (`HF_HUB_OFFLINE=1` or `sd.local_files_only`) it loads only from the local
  cache; a missing model raises `SDModelMissing` naming it and the command or folder that fixes it.
- ControlNet conditions are built here, not by controlnet-aux: line art from the classic teacher's contour
  extractor, and a face map drawn from the mediapipe face mesh. Several ControlNets run together with their
  own scales. A ControlNet `model` given as a folder name inside the base folder is taken from there (the
  tiny test pipeline written by `python -m studio.tiny_sd DIR` ships `controlnet-lineart/`, `controlnet-face/`).
- The init image is the classic teacher's output (or the photo): SD adds hair detail and unifies the style
  of person and background. The person is refined at `person_strength`, the background at `strength`, and
  the two are blended through the feathered person mask, so both come from the same model and style.
- LoRAs (`.safetensors` only; other formats are refused unread, never unpickled) are stacked with weights
  through peft adapters. Memory: fp16 on CUDA, SDPA attention (diffusers' default), optional attention
  slicing, VAE tiling, model CPU offload.
torch and diffusers are imported when the teacher is first used.
"""
from __future__ import annotations

import gc
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from ..config import ControlNetConfig, SDConfig, StudioConfig
from ..io import safe_name
from ..perception import faces as fm
from ..perception import scale_perception
from ..timing import Laps
from ..types import Face, Perception
from .cartoonizer import ink_lines
from .classic import ClassicTeacher
from .face_ink import face_ink
from .lora import SDModelMissing, check_safetensors


def is_offline(cfg: SDConfig) -> bool:
    return cfg.local_files_only or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _family(base: str, offline: bool) -> str:
    """'sdxl' or 'sd15' from the model's model_index.json (folder or hub cache) or a single file's name."""
    p = Path(base)
    index = p / "model_index.json" if p.is_dir() else None
    if index is None and not p.is_file():
        try:
            from huggingface_hub import hf_hub_download

            index = Path(hf_hub_download(base, "model_index.json", local_files_only=offline))
        except Exception:  # noqa: BLE001 - unknown here: the load itself will report what is missing
            index = None
    if index is not None and index.is_file():
        name = json.loads(index.read_text()).get("_class_name", "")
        return "sdxl" if "XL" in name else "sd15"
    return "sdxl" if "xl" in p.name.lower() else "sd15"


def _missing(what: str, name: str, offline: bool, exc: BaseException) -> SDModelMissing:
    first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    how = (f"download it once where there is network (`hf download {name}`), or point the config at a local "
           f"diffusers folder or .safetensors file") if not Path(name).exists() else "check the folder's contents"
    mode = " (offline: only the local cache is used)" if offline else ""
    return SDModelMissing(f"{what} '{name}' could not be loaded{mode}: {first}. Fix: {how}; for a tiny test "
                          "model run `python -m studio.tiny_sd DIR` and use --base DIR")


def _torch_setup(cfg: SDConfig):
    import torch

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device == "cuda" else torch.float32
    return device, dtype


def studio_bases(cfg: StudioConfig) -> list[str]:
    """The base models the studio offers (the only ones its pages and API accept; the CLI takes any path): the
    configured `sd.base`, then each diffusers folder (with model_index.json) and .safetensors file directly under
    `<data_dir>/models/`. A name given by a web user is never looked up on disk or on the hub."""
    found = [cfg.sd.base]
    models = cfg.resolve(cfg.data_dir) / "models"
    if models.is_dir():
        for p in sorted(models.iterdir()):
            if p.name.startswith("."):
                continue
            if (p.is_dir() and (p / "model_index.json").is_file()) or (p.is_file() and p.suffix == ".safetensors"):
                found.append(str(p))
    return list(dict.fromkeys(found))


def missing_here(cfg: StudioConfig, base: str) -> Optional[str]:
    """Why `base` cannot be used on this machine without the network (one short line), or None when it is here: a
    local folder or file, or a hub id in the local cache. Nothing is looked up on the network."""
    try:
        check_base(base, offline=True)
    except (SDModelMissing, ValueError):
        where = cfg.resolve(cfg.data_dir) / "models"
        fetch = f"`hf download {base}` where there is network, or " if not Path(base).exists() else ""
        return (f"Stable Diffusion's base model {Path(base).name or base} is not on this machine: {fetch}put a "
                f"diffusers folder or .safetensors file in {where}.")
    return None


def offered_base(cfg: StudioConfig, base: str) -> str:
    """`base` when the studio offers it (studio_bases), else one ValueError that says nothing of the path."""
    if base not in studio_bases(cfg):
        raise ValueError("unknown base model: pick one of the list (add models under the data folder's models/)")
    return base


def check_base(base: str, offline: bool) -> None:
    """Fail early, naming the base model, when it is neither a local model nor in the hub cache/reachable."""
    p = Path(base)
    if p.is_file():
        check_safetensors(p)
        return
    if p.is_dir():
        if not (p / "model_index.json").is_file():
            raise SDModelMissing(f"Stable Diffusion base model folder '{base}' has no model_index.json: it is not a "
                                 "diffusers pipeline folder (save one with `pipe.save_pretrained(DIR)`)")
        return
    if base.startswith((".", "/", "~")) or base.count("/") != 1:
        raise SDModelMissing(f"Stable Diffusion base model '{base}' not found: no such file or folder, and not a "
                             "hub id of the form owner/name")
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(base, "model_index.json", local_files_only=offline)
    except Exception as exc:  # noqa: BLE001 - any failure here means the model is not available
        raise _missing("Stable Diffusion base model", base, offline, exc) from None


def _free_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_from(cls, source: str, what: str, offline: bool, **kwargs):
    """`cls` from a single .safetensors file or a hub id / diffusers folder; a failure names `what` and the fix."""
    try:
        if Path(source).is_file():
            return cls.from_single_file(str(check_safetensors(source)), local_files_only=offline, **kwargs)
        # safetensors only: a folder holding only pickled weights (.bin, .ckpt) is refused, never unpickled
        return cls.from_pretrained(source, local_files_only=offline, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise _missing(what, source, offline, exc) from None


def load_controlnets(cfg: SDConfig, base: str, dtype, offline: bool) -> list:
    from diffusers import ControlNetModel

    nets = []
    for spec in cfg.controlnets:
        inside = Path(base) / spec.model
        source = str(inside) if Path(base).is_dir() and inside.is_dir() else spec.model
        nets.append(load_from(ControlNetModel, source, f"ControlNet ({spec.kind})", offline, dtype=dtype))
    return nets


def load_pipeline(cfg: SDConfig, base: str):
    """The img2img pipeline (with ControlNets if configured) for `base`, on the configured device."""
    offline = is_offline(cfg)
    check_base(base, offline)  # before importing diffusers (seconds): a missing model fails at once
    from diffusers import (MultiControlNetModel, StableDiffusionControlNetImg2ImgPipeline,
                           StableDiffusionImg2ImgPipeline, StableDiffusionXLControlNetImg2ImgPipeline,
                           StableDiffusionXLImg2ImgPipeline)

    device, dtype = _torch_setup(cfg)
    family = _family(base, offline)
    nets = load_controlnets(cfg, base, dtype, offline)
    kwargs: dict = {"dtype": dtype}
    if nets:
        kwargs["controlnet"] = nets[0] if len(nets) == 1 else MultiControlNetModel(nets)
        cls = StableDiffusionXLControlNetImg2ImgPipeline if family == "sdxl" else StableDiffusionControlNetImg2ImgPipeline
    else:
        cls = StableDiffusionXLImg2ImgPipeline if family == "sdxl" else StableDiffusionImg2ImgPipeline
    pipe = load_from(cls, base, "Stable Diffusion base model", offline, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    if cfg.attention_slicing:
        pipe.enable_attention_slicing()
    if cfg.vae_tiling:
        pipe.vae.enable_tiling()
    if cfg.cpu_offload and device == "cuda":
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    return pipe


# ------------------------------------------------------------------------------------ conditions
def lineart_condition(img01: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """White lines on black (the line-art ControlNet convention), uint8 RGB."""
    alpha = np.maximum(ink_lines(img01, 0.7, 0.8), face_ink(img01.shape, faces, 0.7, 0.8))
    u8 = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(u8[..., None], 3, axis=2)


FACE_PARTS = {  # (indices, closed, colour) after the MediaPipe-face ControlNet's colour coding
    "oval": ("FACE_OVAL", True, (255, 255, 255)),
    "left_eye": ("LEFT_EYE", True, (180, 200, 10)),
    "right_eye": ("RIGHT_EYE", True, (10, 200, 180)),
    "left_brow": ("LEFT_BROW", True, (0, 220, 0)),
    "right_brow": ("RIGHT_BROW", True, (220, 0, 220)),
    "lips_outer": ("LIPS_OUTER", True, (10, 180, 10)),
    "lips_inner": ("LIPS_INNER", True, (10, 180, 10)),
}


def face_condition(shape: Sequence[int], faces: Sequence[Face]) -> np.ndarray:
    """Face-mesh contours drawn on black, uint8 RGB (one colour per feature)."""
    h, w = shape[:2]
    out = np.zeros((h, w, 3), np.uint8)
    for face in faces:
        lm = face.landmarks
        if not face.has_mesh:
            continue
        thick = max(1, int(round(face.box.width / 120)))
        for attr, closed, color in FACE_PARTS.values():
            pts = np.round(lm[list(getattr(fm, attr))]).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], closed, color, thick, cv2.LINE_AA)
        if face.has_irises:
            for c in (468, 473):
                r = float(np.linalg.norm(lm[c + 1] - lm[c]))
                cv2.circle(out, tuple(np.round(lm[c]).astype(int)), max(1, int(r)), (255, 255, 255), -1, cv2.LINE_AA)
    return out


CONDITIONS = {"lineart": lambda img, p: lineart_condition(img, p.faces),
              "face": lambda img, p: face_condition(img.shape, p.faces)}


@dataclass(frozen=True)
class SDRequest:
    """What one SD render needs beyond the classic settings (from StylizeParams, else the config)."""

    base: str
    loras: tuple[tuple[str, float], ...] = ()
    strength: float = 0.45
    person_strength: float = 0.55
    steps: int = 20
    guidance: float = 6.0
    seed: int = 0


class SDTeacher:
    name = "sd"

    def __init__(self, cfg: StudioConfig):
        self.cfg = cfg
        self._pipes: OrderedDict[str, object] = OrderedDict()  # least recently used first
        self._loaded_loras: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()

    def request(self, params) -> SDRequest:
        sd = self.cfg.sd
        strength = sd.strength if getattr(params, "strength", None) is None else params.strength
        person = sd.person_strength if getattr(params, "strength", None) is None else min(1.0, params.strength + (
            sd.person_strength - sd.strength))
        return SDRequest(base=getattr(params, "base", None) or sd.base, loras=tuple(getattr(params, "loras", ()) or ()),
                         strength=float(strength), person_strength=float(person),
                         steps=int(getattr(params, "steps", None) or sd.steps),
                         guidance=float(sd.guidance if getattr(params, "guidance", None) is None else params.guidance),
                         seed=int(getattr(params, "seed", 0)))

    def pipeline(self, base: str):
        """The loaded pipeline of `base`; at most `sd.cached_pipelines` stay loaded (the least recently used one
        is dropped, and its memory freed, before another is loaded)."""
        with self._lock:
            if base in self._pipes:
                self._pipes.move_to_end(base)
                return self._pipes[base]
            while self._pipes and len(self._pipes) >= max(1, self.cfg.sd.cached_pipelines):
                _, old = self._pipes.popitem(last=False)
                self._loaded_loras.pop(id(old), None)
                del old
                gc.collect()
                _free_cuda_cache()
            pipe = self._pipes[base] = load_pipeline(self.cfg.sd, base)
            return pipe

    def prepare(self, params) -> None:
        """Load the base model and check the LoRAs now, so a missing file fails before any photo is processed."""
        req = self.request(params)
        for path, _ in req.loras:
            check_safetensors(path)
        self.pipeline(req.base)

    def _apply_loras(self, pipe, loras: Sequence[tuple[str, float]]) -> None:
        loaded = self._loaded_loras.setdefault(id(pipe), {})
        names, weights = [], []
        for path, weight in loras:
            p = check_safetensors(path).resolve()
            key = str(p)
            if key not in loaded:
                name = f"{safe_name(p.stem)}_{len(loaded)}"
                try:
                    pipe.load_lora_weights(str(p.parent), weight_name=p.name, adapter_name=name)
                except RuntimeError as exc:  # torch's "size mismatch for ...": a LoRA of another base model
                    if name in pipe.get_list_adapters().get("unet", []):
                        pipe.delete_adapters(name)
                    raise ValueError(f"LoRA {p} does not fit this base model: it was trained on another one "
                                     f"({type(exc).__name__} loading it)") from None
                loaded[key] = name
            names.append(loaded[key])
            weights.append(float(weight))
        if names:
            pipe.set_adapters(names, adapter_weights=weights)
        elif loaded:
            pipe.disable_lora()

    def _run(self, pipe, init: np.ndarray, controls: list[np.ndarray], scales: list[float], strength: float,
             req: SDRequest, prompt: str):
        import torch
        from PIL import Image

        strength = float(np.clip(strength, 0.01, 1.0))
        # img2img runs int(steps * strength) denoising steps: keep at least one.
        steps = max(req.steps, int(np.ceil(1.0 / strength)))
        kwargs = dict(prompt=prompt, negative_prompt=self.cfg.sd.negative_prompt, image=Image.fromarray(init),
                      strength=strength, num_inference_steps=steps,
                      guidance_scale=req.guidance, output_type="np",
                      generator=torch.Generator(device="cpu").manual_seed(req.seed))
        if controls:
            imgs = [Image.fromarray(c) for c in controls]
            kwargs["control_image"] = imgs[0] if len(imgs) == 1 else imgs
            kwargs["controlnet_conditioning_scale"] = scales[0] if len(scales) == 1 else scales
        return pipe(**kwargs).images[0]

    def render(self, img: np.ndarray, perception: Perception, character, settings, params=None, tone_fn=None):
        """Teacher protocol: (image01, perception, character, settings) -> (image01, perception, info)."""
        laps = Laps()
        req = self.request(params)
        info: dict = {"sd": {"base": req.base, "strength": req.strength, "person_strength": req.person_strength,
                             "steps": req.steps, "seed": req.seed, "loras": [list(x) for x in req.loras]}}
        # 1. Init image: the classic teacher's result (its lines, palette and face geometry) or the photo.
        if self.cfg.sd.init == "classic":
            init01, perception, classic_info = ClassicTeacher().render(img, perception, character, settings,
                                                                        tone_fn=tone_fn)
            info.update({k: v for k, v in classic_info.items() if k != "timings"})
            laps.timings.update({f"classic.{k}": v for k, v in classic_info["timings"].items()})
        else:
            init01 = img
        laps.lap("init")
        # 2. Diffusion resolution: long side = sd.resolution, both sides multiples of 8.
        h, w = img.shape[:2]
        f = self.cfg.sd.resolution / max(h, w)
        sh, sw = max(8, int(round(h * f / 8)) * 8), max(8, int(round(w * f / 8)) * 8)
        small = lambda a: cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)  # noqa: E731
        photo_s = small(img)
        init_u8 = np.clip(small(init01) * 255 + 0.5, 0, 255).astype(np.uint8)
        scaled = scale_perception(perception, sw / w, sh / h, (sh, sw))
        # 3. ControlNet conditions from the photo and its perception.
        pipe = self.pipeline(req.base)
        specs: list[ControlNetConfig] = list(self.cfg.sd.controlnets)
        controls = [CONDITIONS[c.kind](photo_s, scaled) for c in specs]
        scales = [c.scale for c in specs]
        laps.lap("conditions")
        # 4. LoRAs, then one pass for the background and one for the person (when their strengths differ).
        # The character's own LoRA (if it has one) comes first, then the user's.
        own = character.lora_path() if hasattr(character, "lora_path") else None
        loras = (((str(own), 1.0),) if own else ()) + req.loras
        self._apply_loras(pipe, loras)
        info["sd"]["loras"] = [list(x) for x in loras]
        prompt = ", ".join(x for x in (self.cfg.sd.prompt, getattr(character, "prompt", "")) if x)
        out = self._run(pipe, init_u8, controls, scales, req.strength, req, prompt)
        if scaled.person.max() > 0.5 and abs(req.person_strength - req.strength) > 1e-3:
            person_out = self._run(pipe, init_u8, controls, scales, req.person_strength, req, prompt)
            m = cv2.GaussianBlur(scaled.person, (0, 0), 2.0)[..., None]
            out = person_out * m + out * (1 - m)
        laps.lap("diffusion")
        # 5. Back to the work resolution.
        out = cv2.resize(out.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        laps.lap("resize")
        info["timings"] = laps.timings
        return np.clip(out, 0, 1).astype(np.float32), perception, info
