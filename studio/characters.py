"""Characters: a named look the classic teacher renders toward.

A character is a YAML preset (palette, skin ramp, line weight, default factors, face geometry). Built-in
presets live in `configs/characters/*.yaml`; user characters live in `<data_dir>/characters/<name>/`
(preset YAML + references + fitted profile + optional LoRA, added by the Characters tab).

    from studio.characters import list_characters, load_character
    load_character("classic", cfg).palette
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import yaml

from .color import hex_to_rgb, lab_to_rgb, rgb_to_lab
from .config import ConfigError, StudioConfig, from_dict
from .io import atomic_path, save_image
from .stylize.lora import check_safetensors
from .types import BACKGROUND_FACTORS, FACTORS, BackgroundOffsets, Factors

log = logging.getLogger(__name__)


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
    # How far (L*) a person's skin lightness may move toward the skin ramp's. The default keeps each person's own
    # tone (a pale ramp must not whitewash dark skin); a character goes further only by setting this in its YAML.
    skin_lightness_shift: float = 4.0


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
    prompt: str = ""  # added to the SD teacher's prompt
    lora: str = ""  # a character LoRA (.safetensors), relative to the preset's folder
    source: str = ""

    def lora_path(self) -> Optional[Path]:
        if not self.lora:
            return None
        p = Path(self.source).parent / self.lora
        return p if p.is_file() else None

    def palette_rgb(self) -> np.ndarray:
        return hex_to_rgb(self.palette)

    def skin_ramp_rgb(self) -> np.ndarray:
        return hex_to_rgb(self.skin_ramp)


# A character's name: Unicode letters and digits (하나, さくら, hana_2), '_' and '-'; it names its folder.
NAME_RULE = "letters, digits, '_' and '-' (up to 64, not starting with '-')"
_NAME = re.compile(r"^(?!-)[\w-]{1,64}$")


def _files_in(d: Path) -> dict[str, Path]:
    """`<name>.yaml` and `<name>/character.yaml` presets in folder `d` (not a save in progress: dot folders)."""
    if not d.is_dir():
        return {}
    found = {p.stem: p for p in sorted(d.glob("*.yaml"))}
    found.update({p.parent.name: p for p in sorted(d.glob("*/character.yaml")) if not p.parent.name.startswith(".")})
    return found


def _built_in_files(cfg: StudioConfig) -> dict[str, Path]:
    return _files_in(cfg.resolve(cfg.characters_dir))


def _preset_files(cfg: StudioConfig) -> dict[str, Path]:
    """Built-in presets, then user characters (`<data_dir>/characters/<name>/character.yaml` or `<name>.yaml`). A user
    character never takes a built-in name: it is skipped with a warning (built-in names are reserved)."""
    found = _built_in_files(cfg)
    reserved = {k.casefold() for k in found}
    for name, p in _files_in(cfg.resolve(cfg.data_dir) / "characters").items():
        if name.casefold() in reserved:
            log.warning("skipped %s: %r is a built-in character's name", p, name)
            continue
        found[name] = p
    return found


def check_name(name: str, cfg: StudioConfig) -> str:
    """A new character's name as given (stripped), or ValueError saying the rule: it names a folder, so it is
    refused rather than silently changed, and built-in names are reserved."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValueError(f"character name {name!r} is not allowed: use {NAME_RULE}")
    if name.casefold() in {k.casefold() for k in _built_in_files(cfg)}:
        raise ValueError(f"{name!r} is a built-in character; choose another name")
    return name


def _parse(path: Path) -> Character:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a character is a mapping of keys (palette, skin_ramp, ...)")
    data.setdefault("name", path.stem if path.name != "character.yaml" else path.parent.name)
    for key in ("palette", "skin_ramp"):
        if key in data:
            data[key] = tuple(data[key])
    char = from_dict(Character, data, where=str(path))
    char = Character(**{**char.__dict__, "source": str(path)})
    try:  # validate colours early
        hex_to_rgb(char.palette + char.skin_ramp + (char.line_color, char.eye_color, char.blush_color))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if len(char.palette) < 4:
        raise ConfigError(f"{path}: palette needs at least 4 colours")
    if len(char.skin_ramp) < 2:
        raise ConfigError(f"{path}: skin_ramp needs at least 2 colours (dark to light)")
    return char


def _parse_or_warn(path: Path) -> Optional[Character]:
    try:
        return _parse(path)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        log.warning("skipped character: %s", _why(path, exc))
        return None


def list_characters(cfg: StudioConfig) -> list[Character]:
    """Every available character, built-in first, sorted by name within each folder. One that cannot be read is
    skipped with a one-line warning naming its file: a broken user character does not stop the studio."""
    return [c for c in map(_parse_or_warn, _preset_files(cfg).values()) if c is not None]


def load_character(name: str, cfg: StudioConfig) -> Character:
    files = _preset_files(cfg)
    if name not in files:
        raise ValueError(f"unknown character {name!r}; choices: {sorted(files)}")
    try:
        return _parse(files[name])
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise ConfigError(f"character {name!r} cannot be read: {_why(files[name], exc)}") from None


def _why(path: Path, exc: BaseException) -> str:
    """An error as one short line that names the file once (YAML errors span several lines)."""
    text = " ".join(str(exc).split())
    text = text if str(path) in text else f"{path}: {text}"
    return text if len(text) <= 300 else text[:299] + "…"


def resolve_factors(char: Character, line: Optional[float] = None, texture: Optional[float] = None,
                    color: Optional[float] = None, warp: Optional[float] = None,
                    background_line: Optional[float] = None, background_texture: Optional[float] = None,
                    background_color: Optional[float] = None) -> dict[str, float]:
    """The factor values used: those given, else the character's defaults; the background ones default to the
    person's plus the character's background offsets, clamped to [0, 1]."""
    given = dict(line=line, texture=texture, color=color, warp=warp, background_line=background_line,
                 background_texture=background_texture, background_color=background_color)
    f = {k: getattr(char.defaults, k) if given[k] is None else given[k] for k in FACTORS}
    for name in BACKGROUND_FACTORS:
        k = name.removeprefix("background_")
        f[name] = min(1.0, max(0.0, f[k] + getattr(char.background, k))) if given[name] is None else given[name]
    return {k: float(v) for k, v in f.items()}


# ------------------------------------------------------------------------------ characters from references
@dataclass
class StyleProfile:
    """What was measured on a character's reference images (saved as profile.json beside the preset)."""

    palette: list[str]
    skin: str
    line_weight: float
    ink_coverage: float
    detail: float
    colour_count: int
    eye_to_face: Optional[float]
    face_aspect: Optional[float]
    n_images: int
    n_faces: int


def _hex(rgb01: np.ndarray) -> str:
    r, g, b = (int(round(float(v) * 255)) for v in np.clip(rgb01, 0, 1))
    return f"#{r:02x}{g:02x}{b:02x}"


def fit_profile(images: list[np.ndarray], cfg: StudioConfig, faces_per_image: Optional[list] = None) -> StyleProfile:
    """Measure palette, skin colour, line weight, detail and face geometry on RGB uint8 reference images."""
    if not images:
        raise ValueError("no reference images")
    rng = np.random.default_rng(0)
    samples, widths, coverage, detail, counts = [], [], [], [], []
    for img in images:
        f = 512 / max(img.shape[:2])
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else img
        lab = rgb_to_lab(small.astype(np.float32) / 255.0)
        pts = lab.reshape(-1, 3)
        samples.append(pts[rng.choice(len(pts), min(len(pts), 8000), replace=False)])
        # Ink: dark pixels that form thin strokes; their width from the distance transform's ridge.
        dark = (lab[..., 0] < 22).astype(np.uint8)
        thin = dark & ~cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8)).astype(bool)
        coverage.append(float(thin.mean()))
        if thin.sum() > 50:
            dist = cv2.distanceTransform(thin.astype(np.uint8), cv2.DIST_L2, 3)
            ridge = dist[(dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (dist > 0)]
            # the mean along the centre lines: tapered strokes have thin ends, whose median is one distance step
            widths.append(float(np.mean(ridge)) * 2 * (768 / 512))
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        detail.append(float(np.median(np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 2.0)))))
        q = (small // 8).astype(np.int32)
        codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
        c = np.bincount(codes.ravel())
        counts.append(int((c >= codes.size * 0.0005).sum()))
    allpts = np.concatenate(samples).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    cv2.setRNGSeed(0)
    _, labels, centers = cv2.kmeans(allpts, 16, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    order = np.argsort(-np.bincount(labels.ravel(), minlength=16))
    palette = [_hex(lab_to_rgb(centers[i].reshape(1, 1, 3)).reshape(3)) for i in order]
    # Skin: the reference faces' skin where faces are found, else the most skin-like palette colour.
    skin_lab = None
    eye_ratios, aspects, n_faces = [], [], 0
    if faces_per_image is not None:
        from .perception.faces import FACE_OVAL, LEFT_EYE, RIGHT_EYE
        from .perception.skin import face_skin_samples

        tones = []
        for img, faces in zip(images, faces_per_image):
            for face in faces:
                n_faces += 1
                s = face_skin_samples(img, face)
                if len(s) > 20:
                    tones.append(np.median(s, axis=0))
                lm = face.landmarks
                if face.has_mesh:
                    oval = lm[list(FACE_OVAL)]
                    fw = float(np.ptp(oval[:, 0]))
                    eye = 0.5 * (np.ptp(lm[list(LEFT_EYE), 0]) + np.ptp(lm[list(RIGHT_EYE), 0]))
                    eye_ratios.append(eye / max(fw, 1.0))
                    aspects.append(fw / max(float(np.ptp(oval[:, 1])), 1.0))
        if tones:
            skin_lab = np.median(np.stack(tones), axis=0)
    if skin_lab is None:
        hue = np.degrees(np.arctan2(centers[:, 2], centers[:, 1]))
        chroma = np.hypot(centers[:, 1], centers[:, 2])
        score = np.abs(hue - 55) / 20 + np.abs(chroma - 25) / 15 + np.abs(centers[:, 0] - 70) / 20
        skin_lab = centers[int(np.argmin(score))]
    return StyleProfile(
        palette=palette, skin=_hex(lab_to_rgb(np.asarray(skin_lab, np.float32).reshape(1, 1, 3)).reshape(3)),
        line_weight=float(np.median(widths)) if widths else 0.0, ink_coverage=float(np.mean(coverage)),
        detail=float(np.median(detail)), colour_count=int(np.median(counts)),
        eye_to_face=float(np.median(eye_ratios)) if eye_ratios else None,
        face_aspect=float(np.median(aspects)) if aspects else None, n_images=len(images), n_faces=n_faces)


PHOTO_EYE_TO_FACE = 0.2  # eye width / face width of a photographed adult face (mediapipe mesh)


def character_from_profile(name: str, profile: StyleProfile, base: Character, description: str = "") -> Character:
    """A preset whose palette, skin ramp, line weight, default factors and geometry follow the profile."""
    skin = rgb_to_lab(hex_to_rgb(profile.skin).reshape(1, 1, 3)).reshape(3)
    ramp = []
    for dl, da in ((-32, 6), (-16, 3), (0, 0), (10, -1), (18, -2)):  # dark → light, warmer in the shadows
        lab = np.array([np.clip(skin[0] + dl, 5, 97), skin[1] + da, skin[2] + da], np.float32)
        ramp.append(_hex(lab_to_rgb(lab.reshape(1, 1, 3)).reshape(3)))
    # Rounded as a person would set them (sliders and the saved YAML show 0.33, not 0.3253810331225395).
    weight = round(float(np.clip(profile.line_weight / 2.5, 0.5, 2.0)), 2) if profile.line_weight else base.line_weight
    line = round(float(np.clip(0.3 + profile.ink_coverage * 12.0, 0.2, 0.95)), 2)
    texture = round(float(np.clip(1.0 - profile.detail / 0.02, 0.3, 0.95)), 2)
    color = round(float(np.clip(1.1 - profile.colour_count / 400.0, 0.4, 0.95)), 2)
    geo = base.geometry
    if profile.eye_to_face:
        geo = Geometry(eye_scale=round(float(np.clip(profile.eye_to_face / PHOTO_EYE_TO_FACE, 1.0, 1.6)), 3),
                       face_width=round(float(np.clip((profile.face_aspect or 0.8) / 0.8, 0.85, 1.05)), 3),
                       jaw=base.geometry.jaw, chin=base.geometry.chin, eye_height=base.geometry.eye_height)
    return Character(name=name, display_name=name.replace("_", " ").title(),
                     description=description or f"Fitted from {profile.n_images} reference images",
                     palette=tuple(profile.palette), skin_ramp=tuple(ramp), line_color=base.line_color,
                     line_weight=weight, eye_color=base.eye_color, blush_color=base.blush_color,
                     defaults=Factors(line=line, texture=texture, color=color, warp=base.defaults.warp),
                     background=base.background, geometry=geo, shading=base.shading)


def save_character(character: Character, profile: StyleProfile, references: list[np.ndarray], cfg: StudioConfig,
                   lora: Optional[str] = None) -> Path:
    """Write `<data_dir>/characters/<name>/` (character.yaml, profile.json, references/, lora) atomically: the
    folder is filled under a temporary name and then takes the place of any earlier one."""
    name = check_name(character.name, cfg)
    final = cfg.resolve(cfg.data_dir) / "characters" / name
    data = asdict(character)
    data.pop("source", None)
    data["name"] = name
    data["palette"], data["skin_ramp"] = list(character.palette), list(character.skin_ramp)
    with atomic_path(final) as tmp:
        tmp.mkdir()
        if lora:
            shutil.copy(check_safetensors(lora), tmp / "lora.safetensors")
            data["lora"] = "lora.safetensors"
        (tmp / "character.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        (tmp / "profile.json").write_text(json.dumps(asdict(profile), indent=2))
        for i, img in enumerate(references):
            save_image(img, tmp / "references" / f"{i:03d}.png")
    return final
