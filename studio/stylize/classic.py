"""The classic teacher: cartoonizer + face warp + skin/light composition, no downloaded weights.

It renders the person and the background as two layers with their own factor settings and blends them
through the feathered person mask. Steps are numbered as in `render`; each one's seconds are recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import cv2
import numpy as np

from .. import compose
from ..characters import Character
from ..color import image_scale, smoothstep
from ..compose import LightSteadier
from ..timing import Laps
from ..types import Perception
from .cartoonizer import (BACKGROUND_MIN_LENGTH, BACKGROUND_SOFTNESS, HAIR_QUIET, OUTLINE_ALPHA, Cartoonizer,
                          LayerSettings, PaletteSteadier, ink_over, mask_outline)
from .face_ink import face_ink
from .face_paint import paint_faces, paint_skin
from .face_warp import warp_field


@dataclass(frozen=True)
class ClassicSettings:
    person: LayerSettings
    background: LayerSettings
    warp: float
    normalize_light: bool = True
    light: Optional[LightSteadier] = None  # a clip's light carried across its frames (compose.normalize_light)
    palette: Optional[PaletteSteadier] = None  # a clip's layers' clusters carried across its frames (fit_palette)

    @classmethod
    def from_factors(cls, factors: dict, normalize_light: bool = True,
                     light: Optional[LightSteadier] = None,
                     palette: Optional[PaletteSteadier] = None) -> "ClassicSettings":
        """The settings for resolved factors (`Stylizer.resolve_factors`: line, texture, color, their background_
        twins and warp)."""
        return cls(person=LayerSettings(factors["line"], factors["texture"], factors["color"]),
                   background=LayerSettings(factors["background_line"], factors["background_texture"],
                                            factors["background_color"]),
                   warp=factors["warp"], normalize_light=normalize_light, light=light,
                   palette=palette)


ToneFn = Callable[[np.ndarray, object], object]


class ClassicTeacher:
    """Teacher protocol: `render(image01, perception, character, settings, tone_fn) -> (image01, perception, info)`."""

    name = "classic"

    def __init__(self, cfg=None):
        self.cfg = cfg

    def render(self, img: np.ndarray, perception: Perception, character: Character, s: ClassicSettings,
               params=None, tone_fn: Optional[ToneFn] = None) -> tuple[np.ndarray, Perception, dict]:
        info: dict = {}
        laps = Laps()
        lap = laps.lap

        person, skin, faces, tones = perception.person, perception.skin, perception.faces, perception.skin_tones
        # 1. Lighting: exposure, backlight and colour cast, then re-measure skin under the corrected light.
        if s.normalize_light:
            img, info["light"] = compose.normalize_light(img, person, tones, faces, steady=s.light)
            if tone_fn is not None and info["light"]:  # the light changed: measure the skin again
                u8 = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
                tones = [tone_fn(u8, f) if t is not None else None for f, t in zip(faces, tones)]
        lap("light")
        # 2. Face warp toward the character's geometry; masks and landmarks follow the same field.
        field = warp_field(img.shape, faces, character.geometry, s.warp)
        if not field.is_identity:
            img = field.apply(img)
            person, skin = field.apply(person), field.apply(skin)
            hair = field.apply(perception.hair) if perception.hair is not None else None
            heads = None if perception.hair_heads is None else field.apply(perception.hair_heads, cv2.INTER_NEAREST)
            faces = field.move_faces(faces)
            perception = replace(perception, faces=faces, person=person, skin=skin, hair=hair, hair_heads=heads)
        lap("warp")
        toon = Cartoonizer(character)
        # 3. Person layer: abstraction + palette, skin into the character's ramp, faces painted, hair, eyes.
        person_layer = toon.shade(img, s.person, k=14, steady=s.palette, key="person")
        person_layer = compose.map_skin(img, person_layer, skin, faces, tones, character,
                                        strength=compose.skin_strength(s.person.color))
        # Faces at their own detail level, then the rest of the skin: banded shading that follows the real light
        # (face_paint).
        person_layer = paint_faces(img, person_layer, skin, faces, tones, character, s.person.texture, s.person.color,
                                   image_scale(img.shape))
        person_layer = paint_skin(img, person_layer, skin, faces, tones, character, s.person.texture, s.person.color,
                                  image_scale(img.shape))
        person_layer, strands = compose.hair_shading(img, person_layer, perception.hair, character,
                                                     strength=compose.hair_strength(s.person.color),
                                                     heads=perception.hair_heads)
        person_layer = compose.eye_accents(person_layer, faces, character, strength=s.person.color)
        person_layer = compose.lip_tint(person_layer, faces, character, strength=s.person.color)
        lap("person")
        # 4. Background layer with its own, simpler settings. The smoothers are edge-preserving, so the
        #    person's colours do not bleed out (measured: filling the person region in first made the ring
        #    around the silhouette worse, not better; tests/test_compose.py checks the ring).
        has_person = person.max() > 0.5
        bg_layer = toon.shade(img, s.background, k=10, steady=s.palette, key="background", soft=BACKGROUND_SOFTNESS)
        lap("background")
        # 5. Ink: contours per layer (skin kept quiet), clean face strokes, the silhouette.
        # Skin and hair interiors are "quiet": only strong edges ink there (hair gets its own thin strands).
        quiet = np.maximum(skin, compose.face_region(img.shape, faces))
        if perception.hair is not None:
            quiet = np.maximum(quiet, HAIR_QUIET * perception.hair)
        ink_person = toon.lines(img, s.person, quiet=quiet)
        # Inside the face the landmark strokes draw the features: photo edges there (nose ridge,
        # wrinkles, shadows) are not what a webtoon artist inks.
        ink_person *= 1.0 - compose.face_region(img.shape, faces, shrink=0.88)
        ink_person = np.maximum(ink_person, face_ink(img.shape, faces, s.person.line, character.line_weight,
                                                       image=img))
        ink_person = np.maximum(ink_person, strands * smoothstep(0.0, 0.3, s.person.line))
        # Backgrounds are simpler: only long contours are inked (no gravel, leaves or ripples).
        ink_bg = toon.lines(img, s.background, min_length=BACKGROUND_MIN_LENGTH)
        lap("ink")
        # 6. Compose through the feathered person mask, then the silhouette line on top.
        scale = image_scale(img.shape)
        m = compose.feather(person, 0.8 * max(1.0, scale))
        line_rgb = toon.line_rgb
        out = compose.blend(ink_over(person_layer, ink_person, line_rgb), ink_over(bg_layer, ink_bg, line_rgb), m)
        if has_person:
            out = ink_over(out, mask_outline(person, s.person.line, character.line_weight, image=img) * OUTLINE_ALPHA,
                         line_rgb)
        lap("compose")
        info["timings"] = laps.timings
        perception = replace(perception, skin_tones=list(tones))
        return np.clip(out, 0, 1).astype(np.float32), perception, info
