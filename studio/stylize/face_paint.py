"""Faces painted at their own detail level: the cel shading of a face follows its real light.

The person layer's abstraction is tuned for clothes and bodies: at the studio's texture (0.6-0.75) it smooths a face
of any size into one flat mask and the palette gives its skin one or two colours, which loses the nose, the
cheekbones, a beard's shape and glasses. An independent face recogniser (dlib's descriptor, `python -m
studio.quality`) found the same person in 1 of 10 faces of six shared photos; the whole loss was the smoothing and
the palette inside the face, each costing about as much as the other.

A webtoon artist paints a person's face with more care than their sleeve: clean skin, but the light on it drawn as
two to four flat tones with crisp borders. `paint_faces` does that inside each face oval:
1. the photo is smoothed at a face-relative strength (`FACE_TEXTURE` of the texture factor, measured against the
   face's own size, so a small face in a group keeps its features as a portrait does), and more (`BASE_TEXTURE`);
2. the smoother one's lightness is cut into flat bands `BAND` L* apart (`band_step`: wider for high contrast), one
   centred on the person's skin lightness, with soft borders of a few tenths of a band: a continuous function of the photo, so a
   grey level of noise cannot flip a band; the features (eyes, nostrils, brows, the lip line: where the first departs
   from the second by more than a few L*) are drawn over the bands, the skin's fine texture is not (cut from the
   lighter smoothing alone, freckles and stubble made islands of the bands);
3. skin takes the chroma of the character's skin mapping (its ramp hue, blush), the eyes, brows, lips, beard and
   glasses keep theirs pulled halfway toward the person layer's palette colours;
4. the skin's lightness stays the person's own, moved at most `shading.skin_lightness_shift` toward the ramp.
Measured on those six photos (10 faces, classic): same person 1 -> 9 of 10, median descriptor distance 0.64 -> 0.53.

`paint_skin` paints the rest of the skin the same way (arms get the light's shape; a face the detector missed keeps its
features instead of a blank skin-coloured oval).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import compose
from ..characters import Character
from ..color import lab_to_rgb, rgb_to_lab, smoothstep
from ..types import Face, SkinTone
from .cartoonizer import abstract
from .face_ink import face_box

FACE_TEXTURE = 0.45  # the face's abstraction as a share of the texture factor (0.65 -> 0.29): its features
BASE_TEXTURE = 0.75  # and the smoother one the bands are cut from (0.65 -> 0.49): large connected shapes
FEATURE_DETAIL = (1.0, 4.0)  # L*: departures of the features from the base kept from none to whole
FACE_SIZE = 150.0  # px: a face this wide is smoothed at the image's scale 1; smaller ones less (capped at the image's)
BAND = 10.0  # L* between two shading bands at contrast 1
BAND_SOFT = 0.15  # half the width of a band's soft border, in bands
SKIN_PULL = 0.7  # how far skin's chroma goes to the skin mapping's
FEATURE_PULL = 0.5  # and the rest of the face's to the palette colours of the person layer
SMALL_FACE = (24.0, 80.0)  # px: the bands fade in over these face widths


def bands(L: np.ndarray, anchor: float, step: float, amount: float) -> np.ndarray:
    """L* cut into flat bands `step` apart with soft borders, one band centred on `anchor` (the person's skin: their
    tone stays theirs, shadows and lights are whole bands under and over it); `amount` 0 returns L, 1 the bands."""
    x = (L - anchor) / step
    n = np.floor(x)
    banded = anchor + step * (n + smoothstep(0.5 - BAND_SOFT, 0.5 + BAND_SOFT, x - n))
    return L + (banded - L) * amount


def band_step(character: Character) -> float:
    """L* between two shading bands: wider for high-contrast characters, by the square root of their contrast (noir's
    1.5 at full width, 15 L*, took 12 % of its faces past the recogniser's threshold on four group photos; 12.2 L*
    keeps its hard two-tone look)."""
    return BAND * max(0.3, float(character.shading.contrast)) ** 0.5


def _ramp_offset(ramp: np.ndarray, tone: SkinTone, shift: float) -> float:
    """How far (L*) the person's skin moves toward the character's ramp at their tone: at most `shift` either way."""
    return float(np.clip(float(compose.ramp_color(ramp, compose.tone_position(tone))[0]) - tone.L, -shift, shift))


def _painted(smooth: np.ndarray, base: np.ndarray, here: np.ndarray, anchor, step: float, amount: float,
             pull) -> np.ndarray:
    """RGB of the painted region. Lightness: the smoother `base` (Lab) in bands around `anchor`, plus the features of
    `smooth` (Lab): where it departs from the base by more than a few L* (eyes, nostrils, brows, the lip line), not the
    skin's fine texture, which made islands of the bands (freckles, stubble, pores). Chroma: `smooth`'s moved `pull` of
    the way to the person layer's (`here`, Lab)."""
    painted = np.empty_like(smooth)
    detail = smooth[..., :1] - base[..., :1]
    features = detail * smoothstep(*FEATURE_DETAIL, np.abs(detail))
    painted[..., :1] = bands(base[..., :1], anchor, step, amount) + features + (1.0 - amount) * (detail - features)
    painted[..., 1:] = smooth[..., 1:] * (1.0 - pull) + here[..., 1:] * pull
    return lab_to_rgb(painted)


def paint_faces(img: np.ndarray, layer: np.ndarray, skin: np.ndarray, faces: Sequence[Face],
                tones: Sequence[Optional[SkinTone]], character: Character, texture: float, color: float,
                image_scale: float) -> np.ndarray:
    """`layer` (float RGB, the person layer after the skin mapping) with each face oval repainted from `img` (float RGB,
    the warped photo). `tones`: the skin measured per face (None where it could not be). Returns a new array."""
    amount = float(np.clip(color / 0.7, 0.0, 1.0))
    if amount <= 0.0 and texture <= 0.0:
        return layer
    out = layer.copy()
    ramp = compose.hex_to_lab(list(character.skin_ramp))
    shift = float(character.shading.skin_lightness_shift)
    step = band_step(character)
    tones = list(tones) + [None] * max(0, len(faces) - len(tones))
    for face, tone in zip(faces, tones):
        box = face_box(face, img.shape)
        if box is None:
            continue
        rows, cols = box  # the oval drawn in the box only (a full-frame mask per face cost a crowd 24 frames)
        here_face = face.cropped(box)
        oval = compose.face_region((rows.stop - rows.start, cols.stop - cols.start), [here_face])
        if not oval.any():
            continue
        scale = min(image_scale, max(0.2, face.box.width / FACE_SIZE))
        m = compose.feather(oval, 2.0 * max(1.0, image_scale))[..., None]
        smooth = rgb_to_lab(abstract(img[box], FACE_TEXTURE * texture, scale=scale))
        base = rgb_to_lab(abstract(img[box], BASE_TEXTURE * texture, scale=scale))
        sk = np.clip(skin[box], 0.0, 1.0)[..., None]
        if tone is not None:  # the person's own lightness, moved at most `shift` toward the ramp's
            d = _ramp_offset(ramp, tone, shift)
            smooth[..., :1] += sk * d
            base[..., :1] += sk * d
            anchor = tone.L + d
        else:  # no skin measured: the face's own middle lightness
            anchor = float(np.median(base[..., 0][oval > 0.5])) if (oval > 0.5).any() else 50.0
        # A band is a few pixels on a small face: fewer, softer bands there (a background face is drawn simply).
        small = amount * float(smoothstep(*SMALL_FACE, face.box.width))
        pull = (SKIN_PULL * sk + FEATURE_PULL * (1.0 - sk)) * amount
        painted = _painted(smooth, base, rgb_to_lab(layer[box]), anchor, step, small, pull)
        out[box] = painted * m + out[box] * (1.0 - m)
    return out


def paint_skin(img: np.ndarray, layer: np.ndarray, skin: np.ndarray, faces: Sequence[Face],
               tones: Sequence[Optional[SkinTone]], character: Character, texture: float, color: float,
               image_scale: float) -> np.ndarray:
    """The skin outside the face ovals (arms, necks, and the faces the detector missed, which kept a blank skin-coloured
    oval before) painted as the faces are: the photo's own light in flat bands centred on the nearest measured
    person's skin, with the skin mapping's chroma. Returns a new array (or `layer` when there is nothing to paint)."""
    amount = float(np.clip(color / 0.7, 0.0, 1.0))
    ovals = compose.feather(compose.face_region(img.shape, faces), 2.0 * max(1.0, image_scale))
    w = np.clip(skin, 0.0, 1.0) * (1.0 - ovals)
    sel = w > 0.02
    if amount <= 0.0 or not sel.any():
        return layer
    ys, xs = np.nonzero(sel)
    box = (slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
    smooth = rgb_to_lab(abstract(img[box], FACE_TEXTURE * texture, scale=image_scale))
    base = rgb_to_lab(abstract(img[box], BASE_TEXTURE * texture, scale=image_scale))
    known = [(f, t) for f, t in zip(faces, tones) if t is not None]
    if known:  # each pixel takes the nearest measured person's tone
        ramp = compose.hex_to_lab(list(character.skin_ramp))
        shift = float(character.shading.skin_lightness_shift)
        idx = compose.nearest_face_index(img.shape, [f for f, _ in known])[box]
        d = np.array([_ramp_offset(ramp, t, shift) for _, t in known], np.float32)[idx][..., None]
        anchor = np.array([t.L for _, t in known], np.float32)[idx][..., None] + d
        smooth[..., :1] += d
        base[..., :1] += d
    else:
        anchor = float(np.median(base[..., 0][sel[box]]))
    painted = _painted(smooth, base, rgb_to_lab(layer[box]), anchor, band_step(character), amount,
                       SKIN_PULL * amount)
    out = layer.copy()
    m = w[box][..., None]
    out[box] = painted * m + layer[box] * (1.0 - m)
    return out
