"""Characters: a named look the classic teacher renders toward.

A character is a YAML preset (palette, skin ramp, line weight, default factors, face geometry). Built-in
presets live in `configs/characters/*.yaml`; user characters live in `<data_dir>/characters/<name>/`
(preset YAML + references + fitted profile + optional LoRA, added by the Characters tab).

    from studio.characters import list_characters, load_character
    load_character("classic", cfg).palette
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from .config import ConfigError, StudioConfig, from_dict


@dataclass(frozen=True)
class Factors:
    line: float = 0.6
    texture: float = 0.6
    color: float = 0.6
    warp: float = 0.5


@dataclass(frozen=True)
class BackgroundOffsets:
    """Added to the person's factors for the background (clamped to [0, 1]): simpler, fewer lines."""

    line: float = -0.25
    texture: float = 0.15
    color: float = 0.0


@dataclass(frozen=True)
class Geometry:
    """Where a face is warped toward, at warp strength 1 (ratios; 1.0 = unchanged)."""

    eye_scale: float = 1.2  # eye size
    face_width: float = 0.94  # cheek-to-cheek width
    jaw: float = 0.9  # lower face width (jaw line pulled in below the mouth)
    chin: float = 1.0  # chin length: >1 longer and pointier, <1 shorter
    eye_height: float = 0.0  # eye position, in eye-widths (negative = higher)


@dataclass(frozen=True)
class Shading:
    skin_levels: int = 3  # tone levels on skin (shadow / base / highlight)
    blush: float = 0.35  # cheek blush strength
    saturation: float = 1.0  # chroma scale applied to palette-mapped colours
    hair_highlight: float = 0.6
    contrast: float = 1.0  # tone-level spread


@dataclass(frozen=True)
class Character:
    name: str
    display_name: str
    description: str = ""
    palette: tuple[str, ...] = ()
    skin_ramp: tuple[str, ...] = ()  # dark → light; a person's tone picks a position on it
    line_color: str = "#1e1a1a"
    line_weight: float = 1.0  # thickness multiplier
    eye_color: str = "#3a2a22"
    blush_color: str = "#f08a8a"
    defaults: Factors = field(default_factory=Factors)
    background: BackgroundOffsets = field(default_factory=BackgroundOffsets)
    geometry: Geometry = field(default_factory=Geometry)
    shading: Shading = field(default_factory=Shading)
    source: str = ""

    def palette_rgb(self) -> np.ndarray:
        return hex_to_rgb(self.palette)

    def skin_ramp_rgb(self) -> np.ndarray:
        return hex_to_rgb(self.skin_ramp)


def hex_to_rgb(colors) -> np.ndarray:
    """('#rrggbb', ...) → float32 (N, 3) in [0, 1]."""
    if isinstance(colors, str):
        colors = [colors]
    out = []
    for c in colors:
        s = c.lstrip("#")
        if len(s) != 6:
            raise ConfigError(f"colour {c!r} is not #rrggbb")
        out.append([int(s[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])
    return np.asarray(out, dtype=np.float32).reshape(-1, 3)


def _character_dirs(cfg: StudioConfig) -> list[Path]:
    dirs = [cfg.resolve(cfg.characters_dir)]
    user = cfg.resolve(cfg.data_dir) / "characters"
    if user.is_dir():
        dirs.append(user)
    return dirs


def _preset_files(cfg: StudioConfig) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in _character_dirs(cfg):
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.yaml")):
            found[p.stem] = p
        for p in sorted(d.glob("*/character.yaml")):
            found[p.parent.name] = p
    return found


def _parse(path: Path) -> Character:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    data.setdefault("name", path.stem if path.name != "character.yaml" else path.parent.name)
    for key in ("palette", "skin_ramp"):
        if key in data:
            data[key] = tuple(data[key])
    char = from_dict(Character, data, where=str(path))
    char = Character(**{**char.__dict__, "source": str(path)})
    hex_to_rgb(char.palette)  # validate colours early
    if len(char.palette) < 4:
        raise ConfigError(f"{path}: palette needs at least 4 colours")
    if len(char.skin_ramp) < 2:
        raise ConfigError(f"{path}: skin_ramp needs at least 2 colours (dark to light)")
    return char


def list_characters(cfg: StudioConfig) -> list[Character]:
    """Every available character, built-in first, sorted by name within each folder."""
    return [_parse(p) for p in _preset_files(cfg).values()]


def load_character(name: str, cfg: StudioConfig) -> Character:
    files = _preset_files(cfg)
    if name not in files:
        raise ValueError(f"unknown character {name!r}; choices: {sorted(files)}")
    return _parse(files[name])


def character_names(cfg: StudioConfig) -> list[str]:
    return sorted(_preset_files(cfg))


def resolve_factors(char: Character, line: Optional[float], texture: Optional[float], color: Optional[float],
                    warp: Optional[float]) -> Factors:
    d = char.defaults
    pick = lambda v, dv: float(dv if v is None else v)  # noqa: E731
    return Factors(pick(line, d.line), pick(texture, d.texture), pick(color, d.color), pick(warp, d.warp))
