"""Studio configuration: frozen dataclasses loaded from YAML, with `key.sub=value` overrides.

    cfg = load_config("configs/studio.yaml", ["perception.max_faces=8", "server.port=7861"])

Unknown keys are errors (a typo in a YAML file must not be silently ignored).
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "studio.yaml"


class ConfigError(ValueError):
    """A configuration file or override is invalid."""


@dataclass(frozen=True)
class PerceptionConfig:
    face_backend: str = "mediapipe"  # mediapipe | insightface
    max_faces: int = 32  # faces that get a landmark mesh (the largest first)
    min_face_score: float = 0.5
    min_face_px: int = 12  # smaller detections are ignored
    insightface_root: str = "~/.insightface"
    insightface_model: str = "buffalo_l"
    pose: bool = False  # pose landmarks cost ~30 ms; off unless asked
    # Steadier answers for nearly equal photos (issue 14): the meshes of faces from ~21 px averaged over 4 framings
    # (~12 ms a face), the person mask over 16 sub-pixel phases of its model's grid and refined twice (~60 ms more at
    # 512 px); off in the stream, which has its tracker and temporal blend.
    steady: bool = True


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: int = 500


@dataclass(frozen=True)
class ControlNetConfig:
    kind: str  # which condition the project builds for it: lineart | face
    model: str  # hub id, local diffusers folder, or a .safetensors file
    scale: float = 0.8


@dataclass(frozen=True)
class SDConfig:
    """The Stable Diffusion teacher (`--teacher sd`). Weights are never downloaded by the tests."""

    base: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # hub id, diffusers folder or .safetensors file
    controlnets: tuple[ControlNetConfig, ...] = (
        ControlNetConfig("lineart", "lllyasviel/control_v11p_sd15_lineart", 0.8),
        ControlNetConfig("face", "CrucibleAI/ControlNetMediaPipeFace", 0.5),
    )
    local_files_only: bool = False  # also forced by HF_HUB_OFFLINE=1
    device: str = "auto"  # auto | cpu | cuda
    resolution: int = 512  # long side the diffusion runs at (multiple of 8)
    steps: int = 20
    strength: float = 0.45  # background
    person_strength: float = 0.55  # the person (and hair) can be refined harder than the background
    guidance: float = 6.0
    init: str = "classic"  # classic (the classic teacher's output) | photo
    prompt: str = "webtoon style, clean line art, flat cel shading, vibrant colors"
    negative_prompt: str = "photo, realistic, blurry, lowres, noisy, jpeg artifacts, deformed"
    attention_slicing: bool = False
    vae_tiling: bool = True
    cpu_offload: bool = False
    cached_pipelines: int = 2  # base models kept loaded (least recently used dropped first): each holds GBs


@dataclass(frozen=True)
class StudioConfig:
    data_dir: str = "./toonlab-data"
    characters_dir: str = "configs/characters"
    default_character: str = "classic"
    max_input_pixels: int = 40_000_000  # larger images are refused (decompression bombs, 50 MP photos)
    process_max_side: int = 1600  # work resolution; the result is resized back to the input size
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    sd: SDConfig = field(default_factory=SDConfig)

    def resolve(self, path: str) -> Path:
        """A config path made absolute: relative paths are relative to the repository root."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else REPO_ROOT / p


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, where)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list")
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp in (int, float, str):
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, tp) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and f.init
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Apply `a.b=value` overrides (value parsed as YAML) to a nested dict, returning a new dict."""
    out = yaml.safe_load(yaml.safe_dump(data)) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_config(path: Optional[os.PathLike | str] = None, overrides: Iterable[str] = ()) -> StudioConfig:
    """Load the studio config (defaults: configs/studio.yaml) and apply overrides."""
    p = Path(path) if path else DEFAULT_CONFIG
    data: dict = {}
    if p.exists():
        with open(p, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    elif path:
        raise ConfigError(f"config file not found: {p}")
    data = apply_overrides(data, overrides)
    return from_dict(StudioConfig, data, where=str(p.name))
