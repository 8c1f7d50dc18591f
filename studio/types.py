"""The data nouns of the studio: images, boxes, faces, masks, perception, parameters and results.

Images are numpy arrays, RGB, uint8, shape (H, W, 3). Masks are float32 arrays in [0, 1], shape (H, W).
Landmarks are float32 arrays of pixel coordinates, shape (N, 2) as (x, y).
Nothing here imports a heavy library.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Optional

import numpy as np

Image = np.ndarray  # (H, W, 3) uint8 RGB
Mask = np.ndarray  # (H, W) float32 in [0, 1]


@dataclass(frozen=True)
class Factors:
    """The perceptual factors of a look, each in [0, 1]: ink lines, flat texture, palette colour, face warp."""

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


FACTORS = tuple(f.name for f in fields(Factors))  # ("line", "texture", "color", "warp"): what every UI and CLI offers
BACKGROUND_FACTORS = tuple(f"background_{f.name}" for f in fields(BackgroundOffsets))  # background_line, ...


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: (x0, y0) top-left, (x1, y1) bottom-right, exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def iou(self, other: "Box") -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def expand(self, factor: float) -> "Box":
        cx, cy = self.center
        hw, hh = self.width * factor / 2.0, self.height * factor / 2.0
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

    def clip(self, width: int, height: int) -> "Box":
        return Box(max(0.0, self.x0), max(0.0, self.y0), min(float(width), self.x1), min(float(height), self.y1))

    def scaled(self, kx: float, ky: Optional[float] = None) -> "Box":
        """The box in an image resized by (kx, ky) (ky: kx when None)."""
        ky = kx if ky is None else ky
        return Box(self.x0 * kx, self.y0 * ky, self.x1 * kx, self.y1 * ky)

    def as_int(self) -> tuple[int, int, int, int]:
        return int(round(self.x0)), int(round(self.y0)), int(round(self.x1)), int(round(self.y1))

    def to_dict(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1}


@dataclass
class Face:
    """One detected face.

    `landmarks` holds the 468 (or 478 with irises) face-mesh points in image pixels, or None when the
    backend found the face but could not place a mesh on it (very small or heavily occluded faces).
    `keypoints` holds the detector's six coarse points (eyes, nose tip, mouth, ear tragions) when known.
    """

    box: Box
    score: float
    landmarks: Optional[np.ndarray] = None
    keypoints: Optional[np.ndarray] = None
    backend: str = "mediapipe"

    @property
    def has_mesh(self) -> bool:
        """A face-mesh layout (468 points, 478 with irises): what the mesh index constants refer to.
        insightface's 106-point landmarks are not a mesh."""
        return self.landmarks is not None and len(self.landmarks) >= 468

    @property
    def has_irises(self) -> bool:
        return self.landmarks is not None and len(self.landmarks) >= 478

    def with_landmarks(self, landmarks: Optional[np.ndarray]) -> "Face":
        return replace(self, landmarks=landmarks)

    def cropped(self, box: tuple[slice, slice]) -> "Face":
        """The face in the crop `box` = (rows, cols) of its image (as face_ink.face_box gives it): box, landmarks
        (x, y; a depth column is kept) and keypoints shifted, as new arrays."""
        rows, cols = box
        return self.moved(-float(cols.start or 0), -float(rows.start or 0))

    def moved(self, dx: float, dy: float) -> "Face":
        """The face moved by (dx, dy) px: box, landmarks (x, y; a depth column is kept) and keypoints, as new
        arrays."""
        lm = None
        if self.landmarks is not None:
            lm = self.landmarks.copy()
            lm[:, 0] += dx
            lm[:, 1] += dy
        kp = None if self.keypoints is None else self.keypoints + np.array([dx, dy], self.keypoints.dtype)
        b = self.box
        return replace(self, box=Box(b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy), landmarks=lm, keypoints=kp)

    def scaled(self, kx: float, ky: Optional[float] = None) -> "Face":
        """The face in an image resized by (kx, ky) (ky: kx when None): box, landmarks (x, y; a depth column is
        kept) and keypoints, as new arrays."""
        k = np.array([kx, kx if ky is None else ky], np.float32)
        lm = None
        if self.landmarks is not None:
            lm = self.landmarks.astype(np.float32)  # a copy
            lm[:, :2] *= k
        kp = None if self.keypoints is None else self.keypoints * k
        return replace(self, box=self.box.scaled(kx, ky), landmarks=lm, keypoints=kp)


@dataclass
class SkinTone:
    """Statistics of a person's skin in CIE L*a*b* (L in [0, 100]) measured on face skin."""

    L: float
    a: float
    b: float
    ita: float  # individual typology angle in degrees: higher is lighter skin

    def to_dict(self) -> dict:
        return {"L": self.L, "a": self.a, "b": self.b, "ita": self.ita}


@dataclass
class Perception:
    """What the studio knows about a photo before stylising it."""

    faces: list[Face]
    person: Mask  # soft person (foreground) mask
    skin: Mask  # soft skin mask: face, neck, arms, hands
    skin_tones: list[Optional[SkinTone]] = field(default_factory=list)  # one per face, same order
    pose: Optional[np.ndarray] = None  # (33, 3) x, y in pixels and visibility, or None
    hair: Optional[Mask] = None
    hair_heads: Optional[np.ndarray] = None  # (H, W) uint16: whose hair, 1 + the face's index (hair_and_heads; 0: none)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StylizeParams:
    """The user-facing knobs, each in [0, 1]. None means "use the character's default"."""

    character: str = "classic"
    line: Optional[float] = None
    texture: Optional[float] = None
    color: Optional[float] = None
    warp: Optional[float] = None
    background_line: Optional[float] = None
    background_texture: Optional[float] = None
    background_color: Optional[float] = None
    normalize_light: bool = True
    teacher: str = "classic"
    seed: int = 0
    # SD teacher only (None: from configs/studio.yaml `sd`)
    base: Optional[str] = None
    loras: tuple[tuple[str, float], ...] = ()  # (file.safetensors, weight), stacked in order
    strength: Optional[float] = None
    steps: Optional[int] = None
    guidance: Optional[float] = None

    def validate(self) -> None:
        """ValueError naming the first field out of its rule (studio.checks: the same rules as the CLI's)."""
        self.checked()

    def checked(self) -> "StylizeParams":
        """These params with every number checked against its rule (studio.checks) and converted (an API client may
        send "0.4" or 8.0): a one-line ValueError for NaN, infinities, strings that are not numbers, out of range."""
        from .checks import FACTOR, LORA_WEIGHT, SD_GUIDANCE, SD_STEPS, SD_STRENGTH, SEED

        values = {name: FACTOR.check(name, getattr(self, name), optional=True)
                  for name in FACTORS + BACKGROUND_FACTORS}
        values.update(strength=SD_STRENGTH.check("strength", self.strength, optional=True),
                      steps=SD_STEPS.check("steps", self.steps, optional=True),
                      guidance=SD_GUIDANCE.check("guidance", self.guidance, optional=True),
                      seed=SEED.check("seed", self.seed))
        values["loras"] = tuple((path, LORA_WEIGHT.check(f"the weight of {Path(path).name}", weight))
                                for path, weight in self.loras)
        return replace(self, **values)


@dataclass
class StylizeResult:
    """The output of the Stylizer: the image plus what was used to make it."""

    image: Image
    perception: Perception
    params: StylizeParams
    factors: dict[str, float]  # the resolved factor values actually used
    timings: dict[str, float]
    teacher: str = "classic"
    info: dict = field(default_factory=dict)  # what the teacher did (e.g. the light correction applied)

    @property
    def faces(self) -> list[Face]:
        return self.perception.faces

    @property
    def masks(self) -> dict[str, Mask]:
        out = {"person": self.perception.person, "skin": self.perception.skin}
        if self.perception.hair is not None:
            out["hair"] = self.perception.hair
        return out

    @property
    def seconds(self) -> float:
        return float(sum(self.timings.values()))
