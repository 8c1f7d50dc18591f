"""Composition: lighting normalisation, skin-tone mapping, hair and eye accents, layer blending.

- `normalize_light`: dim photos are lifted, backlit people are lifted on their own, and coloured light is
  corrected toward neutral using the face skin as a white reference (skin hue varies little between
  people; its lightness does, so lightness is never used as the reference).
- `map_skin`: the person's skin tone picks a position on the character's skin ramp (dark → light) for its colour,
  while its lightness stays within `shading.skin_lightness_shift` L* of the person's own (each person keeps
  their tone); the shading within the skin is quantised into the character's tone levels.
- `blend`: person over background through a feathered mask.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import cv2
import numpy as np
from scipy.ndimage import find_objects

from .characters import Character
from .color import hex_to_rgb, image_scale, lab_to_rgb, rgb_to_lab, smoothstep, to_u8
from .imageops import clip_unit, disc_coverage, fill_coverage, gradient_magnitude
from .perception.faces import FACE_OVAL, LEFT_EYE, LIPS_INNER, LIPS_OUTER, RIGHT_EYE
from .types import Box, Face, SkinTone

SKIN_HUE_BAND = (35.0, 75.0)  # degrees in the a*b* plane: skin of all tones under neutral light
SKIN_CHROMA_BAND = (8.0, 45.0)
SKIN_L_RANGE = (25.0, 75.0)  # measured skin L* mapped onto the ramp, dark end to light end
EXPOSURE_SKIN_LIFT = 6.0  # L*: the most the exposure step lifts the measured skin of people in a dim photo
# Lit skin of any tone reads L* 30-75 (the darkest test portrait, in studio light, 37): under 20 it is in shadow.
SHADOW_SKIN_L = 20.0
# Face width (px at the reference size: image_scale's 768-px long side) over which a face's skin comes to count in the
# photo-wide light decisions (the exposure's limit, backlight, the colour cast). A smaller face's skin sample is a few
# pixels of eyes, hair or scarf: the stage clip's 16-px face (at 360 px; 36 at the reference) measured L* 2-3 and
# switched the exposure gain 1.19 <-> 1.12 as it was found or not; the pedestrians' 12-20 px faces (26-43) measured
# b* -6 to -12 and pulled the whole frame by b* +14 or +22 as they came and went. The singer's own 27-px face (57)
# and the photos' faces (the blue-lit audience's smallest 60, a crowd's 55) count fully.
LIGHT_FACE_PX = (40.0, 56.0)


LightSteadier = Callable[[float, float, np.ndarray], tuple[float, float, np.ndarray]]


def normalize_light(img: np.ndarray, person: np.ndarray, tones: Sequence[Optional[SkinTone]],
                    faces: Optional[Sequence[Face]] = None,
                    steady: Optional[LightSteadier] = None) -> tuple[np.ndarray, dict]:
    """Return the corrected image (float RGB) and what was done (for the result's report). With the `faces` the tones
    were measured on, each face's skin counts by its size (LIGHT_FACE_PX): faces too small to measure do not decide
    the photo's lightness where a larger one does, nor its colour cast, which is corrected as far as the largest face
    is sure.

    The image's own decision is (exposure gain, backlight gamma, colour-cast shift (a*, b*)), (1, 1, (0, 0)) for
    none. `steady` (a clip's frames; realtime.renderers.SteadyClip) is given it and returns the one applied: a light
    carried across the clip's frames, so a face coming and going does not switch the light of the whole frame."""
    info: dict = {}
    weights = [1.0] * len(tones)
    if faces is not None:
        scale = image_scale(img.shape)
        weights = [float(smoothstep(*LIGHT_FACE_PX, f.box.width / scale)) for f in faces]
    sure = [(t, w) for t, w in zip(tones, weights) if t is not None and w > 0.0]
    # 1. Exposure: an under-exposed photo's brightest pixels sit well below white; scale it back up
    #    (one gain for all channels, bounded), then lift the mid-tones if the photo is still dark.
    top = float(np.percentile(img.max(axis=2), 99.5))
    gain = float(np.clip(0.97 / max(top, 1e-3), 1.0, 4.0))
    # Lightness from the faces large enough to measure, else from any measured (a street of small faces still tells
    # lit people from people in shadow); the cast from the large enough ones only (below).
    known = [t for t, _ in sure] or [t for t in tones if t is not None]
    if known:
        # People keep their own skin lightness: in a dim photo that still has highlights (a flash photo in a dark
        # room, an evening scene) the gain may lift the measured skin by at most EXPOSURE_SKIN_LIFT L* (a gain g on
        # sRGB values moves L* + 16 by about g ** 0.8): two_faces_close_01 (skin L* 30-36, highlights at 0.67, gain
        # 1.46) came out with faces 16-20 L* lighter than the people are. A photo with nothing over half of white is
        # under-exposed, and its skin is not the person's: it is corrected whole (the limit fades out from 0.6 to 0.45).
        L0 = float(np.median([t.L for t in known]))
        lift = EXPOSURE_SKIN_LIFT + 100.0 * (1.0 - float(smoothstep(0.45, 0.6, top)))
        gain = min(gain, max(1.0, ((L0 + 16.0 + lift) / max(L0 + 16.0, 1.0)) ** 1.25))
    gain = gain if top < 0.7 else 1.0  # a normally exposed photo is left alone
    lit = np.clip(img * gain, 0.0, 1.0) if gain > 1.0 else img
    # A photo with dark content but real highlights (a dark suit, a night scene with a lit face) is not
    # under-exposed, and dark skin is not dim light: neither is brightened.
    lab = rgb_to_lab(lit)
    L = lab[..., 0]
    med = float(np.median(L))
    gamma = 1.0
    # 2. Backlight: a person much darker than a bright scene is lifted through the feathered person mask. How
    #    dark the person is comes from their face skin when a face was measured: the person mask's median is
    #    mostly clothes, and two men in dark suits before a bright wall (two_people_01: skin L* 44-47, person
    #    median under 25) were lifted to gamma 0.4 and drawn with near-white faces (SHADOW_SKIN_L).
    people = person.mean() > 0.02 and (1.0 - person).mean() > 0.02
    if people:
        p_med = float(np.median(L[person > 0.5])) if (person > 0.5).any() else med
        b_med = float(np.median(L[person < 0.5])) if (person < 0.5).any() else med
        dark = float(np.median([t.L for t in known])) < SHADOW_SKIN_L if known else p_med < 25.0
        if dark and b_med > max(2.0 * p_med, 45.0):
            gamma = float(np.clip(np.log(0.40) / np.log(max(p_med, 1.0) / 100.0), 0.4, 1.0))
    # 3. Colour cast: skin of every tone has a hue between orange and yellow; a face whose hue falls outside
    #    that band (blue stage light, green fluorescent) shows the light's colour, which is removed.
    shift = np.zeros(2, np.float32)
    if sure:
        w = np.array([w for _, w in sure], np.float32)
        ab = (np.array([[t.a, t.b] for t, _ in sure], np.float32) * w[:, None]).sum(axis=0) / w.sum()
        target = skin_chroma_in_band(ab)
        norm = float(np.linalg.norm(target - ab))
        if norm > 3.0:
            shift = (target - ab) * min(1.0, 25.0 / norm) * float(w.max())
    if steady is not None:  # a clip's light, carried from frame to frame
        own = gain
        gain, gamma, shift = steady(gain, gamma, shift)
        if gain != own:
            lab = rgb_to_lab(np.clip(img * gain, 0.0, 1.0) if gain > 1.0 else img)
            L = lab[..., 0]
    if gain > 1.0:
        info["exposure_gain"] = round(gain, 3)
    if people and gamma < 1.0:
        lifted = 100.0 * (L / 100.0) ** gamma
        m = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 3.0 * max(1.0, image_scale(img.shape)))
        lab[..., 0] = L * (1.0 - m) + lifted * m
        info["backlight_gamma"] = round(gamma, 3)
    if np.any(shift != 0.0):
        lab[..., 1:] += shift
        info["cast_shift_ab"] = [round(float(v), 2) for v in shift]
    if not info:  # nothing to correct: skip the Lab round trip
        return img, info
    return lab_to_rgb(lab), info


def hex_to_lab(colors) -> np.ndarray:
    """'#rrggbb' (or a list of them) → CIE L*a*b*, shape (3,) or (N, 3)."""
    rgb = hex_to_rgb(colors)
    lab = rgb_to_lab(rgb.reshape(1, -1, 3)).reshape(-1, 3)
    return lab[0] if isinstance(colors, str) else lab


def skin_chroma_in_band(ab: np.ndarray) -> np.ndarray:
    """The nearest skin chroma (a*, b*) whose hue and chroma are in the neutral-light band."""
    a, b = float(ab[0]), float(ab[1])
    hue = float(np.degrees(np.arctan2(b, a)))
    chroma = float(np.hypot(a, b))
    lo, hi = SKIN_HUE_BAND
    if hue < -90.0:  # bluish-green side wraps to the far end of the band
        hue += 360.0
    hue = float(np.clip(hue, lo, hi))
    chroma = float(np.clip(chroma, *SKIN_CHROMA_BAND))
    return np.array([chroma * np.cos(np.radians(hue)), chroma * np.sin(np.radians(hue))], np.float32)


def ramp_color(ramp_lab: np.ndarray, u: float) -> np.ndarray:
    """Interpolate a dark→light colour ramp (Lab) at position u in [0, 1]."""
    u = float(np.clip(u, 0.0, 1.0)) * (len(ramp_lab) - 1)
    i = min(int(u), len(ramp_lab) - 2)
    f = u - i
    return ramp_lab[i] * (1 - f) + ramp_lab[i + 1] * f


def tone_position(tone: SkinTone) -> float:
    lo, hi = SKIN_L_RANGE
    return float(np.clip((tone.L - lo) / (hi - lo), 0.0, 1.0))


def nearest_face_index(shape: Sequence[int], faces: Sequence[Face]) -> np.ndarray:
    """For each pixel, the index of the face whose centre is nearest (distance in face sizes)."""
    h, w = shape[:2]
    f = 8  # compute at 1/8 resolution: the assignment is smooth anyway
    ys, xs = np.mgrid[0:h:f, 0:w:f].astype(np.float32)
    best = np.full(xs.shape, np.inf, np.float32)
    idx = np.zeros(xs.shape, np.int32)
    for i, face in enumerate(faces):
        cx, cy = face.box.center
        size = max(face.box.width, 1.0)
        d = ((xs - cx) ** 2 + (ys - cy) ** 2) / size ** 2
        better = d < best
        best[better] = d[better]
        idx[better] = i
    return cv2.resize(idx.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int32)


def map_skin(img: np.ndarray, shaded: np.ndarray, skin: np.ndarray, faces: Sequence[Face],
             tones: Sequence[Optional[SkinTone]], character: Character, strength: float) -> np.ndarray:
    """Recolour skin into the character's skin ramp with quantised tone levels; returns float RGB. `tones` are
    measured on `img`, after its light was corrected: an under-exposed photo's lift is light, not a skin change."""
    if strength <= 0.0 or skin.max() < 0.05:
        return shaded
    known = [(i, t) for i, t in enumerate(tones) if t is not None]
    if not known:
        # No face to measure: take the tone of the skin pixels themselves.
        lab = rgb_to_lab(img)
        sel = skin > 0.5
        if sel.sum() < 50:
            return shaded
        Lm, am, bm = (float(np.median(lab[..., c][sel])) for c in range(3))
        known = [(0, SkinTone(Lm, am, bm, 0.0))]
        faces = [Face(box=_box_of(sel), score=1.0)]
    lab_sh = rgb_to_lab(shaded)
    L = lab_sh[..., 0]
    # Per-pixel reference tone: the nearest face's measured skin.
    idx = nearest_face_index(img.shape, [faces[i] for i, _ in known])
    base = np.stack([lit_skin(character, t) for _, t in known]).astype(np.float32)
    ref_L = np.array([t.L for _, t in known], np.float32)[idx]
    base_px = base[idx]
    # Shading relative to the person's own skin median, quantised into tone levels with soft steps. The
    # lightness is first smoothed within the skin (normalised convolution) so shadows form large shapes.
    sigma = 4.0 * max(1.0, image_scale(img.shape))
    wsk = np.clip(skin, 0, 1).astype(np.float32)
    L_smooth = cv2.GaussianBlur(L * wsk, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(wsk, (0, 0), sigma), 1e-3)
    rel = L_smooth - ref_L
    levels = max(2, int(character.shading.skin_levels))
    contrast = character.shading.contrast
    # A shadow is at least 6 L* under the person's median and never more than a third of their skin: the lit tone
    # stays each person's main colour (a side-lit face must not measure as its shadow tone).
    edge = np.array([min(-6.0, _rel_quantile(rel, skin, idx == k, 0.33)) for k in range(len(known))], np.float32)[idx]
    shadow = 1.0 - smoothstep(edge - 6.0, edge, rel)  # 1 in shadow
    tone_L = base_px[..., 0] - 14.0 * contrast * shadow
    if levels >= 3:
        high = smoothstep(6.0, 11.0, rel)
        tone_L = tone_L + 6.0 * contrast * high
    out = np.empty_like(lab_sh)
    out[..., 0] = np.clip(tone_L, 0, 100)
    out[..., 1] = base_px[..., 1] + 4.0 * shadow  # warmer shadows, as a colourist paints them
    out[..., 2] = base_px[..., 2] + 2.0 * shadow
    out = _add_blush(out, faces, character)
    m = (np.clip(skin, 0, 1) * strength)[..., None]
    return lab_to_rgb(lab_sh * (1 - m) + out * m)


def skin_strength(color: float) -> float:
    """How much of a person's skin `map_skin` recolours at colour factor `color`."""
    return min(1.0, 0.3 + color)


def hair_strength(color: float) -> float:
    """How much of a person's hair `hair_shading` paints at colour factor `color` (the teacher's and the realtime
    step's)."""
    return min(1.0, 0.3 + color)


def lit_skin(character: Character, tone: SkinTone) -> np.ndarray:
    """The L*a*b* colour `map_skin` gives the lit skin of a person of `tone`: the character's skin ramp at the
    person's place on it, at their own lightness moved at most the character's `skin_lightness_shift` toward the
    ramp's (`_own_lightness`)."""
    ramp = hex_to_lab(list(character.skin_ramp))
    return _own_lightness(ramp_color(ramp, tone_position(tone)), tone, character.shading.skin_lightness_shift)


def _rel_quantile(rel: np.ndarray, skin: np.ndarray, near: np.ndarray, q: float) -> float:
    """The q-quantile of `rel` over the skin pixels in `near` (0 when there are too few to tell)."""
    sel = near & (skin > 0.5)
    return float(np.quantile(rel[sel], q)) if sel.sum() >= 50 else 0.0


def _own_lightness(color_lab: np.ndarray, tone: SkinTone, max_shift: float, hue_pull: float = 0.5) -> np.ndarray:
    """The ramp colour at the person's lightness, moved at most `max_shift` L* toward the ramp's own, and its a*b*
    halfway between the ramp's and the person's own (the character's colour, the person's hue family)."""
    out = np.array(color_lab, np.float32)
    out[0] = tone.L + float(np.clip(out[0] - tone.L, -max_shift, max_shift))
    out[1:] = hue_pull * out[1:] + (1.0 - hue_pull) * np.array([tone.a, tone.b], np.float32)
    return out


def _box_of(sel: np.ndarray):
    ys, xs = np.nonzero(sel)
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def _add_blush(lab: np.ndarray, faces: Sequence[Face], character: Character) -> np.ndarray:
    amount = character.shading.blush
    if amount <= 0:
        return lab
    blush = hex_to_lab(character.blush_color)
    h, w = lab.shape[:2]
    weight = np.zeros((h, w), np.float32)
    for face in faces:
        lm = face.landmarks
        if not face.has_mesh or face.box.width < 40:
            continue
        cheeks = np.zeros((h, w), np.float32)
        for idx in (50, 280):  # cheek centres on the face mesh
            cx, cy = lm[idx]
            r = 0.11 * face.box.width
            cv2.ellipse(cheeks, (int(cx), int(cy)), (int(r * 1.3), int(r * 0.8)), 0, 0, 360, 1.0, -1)
        # each face's blush is softened at its own scale (blurring the shared canvas per face would blur the
        # earlier faces' cheeks again and again)
        weight = np.maximum(weight, cv2.GaussianBlur(cheeks, (0, 0), 0.06 * face.box.width))
    weight = (weight * amount * 0.6)[..., None]
    return lab * (1 - weight) + blush * weight


def feature_box(x0: float, y0: float, x1: float, y1: float, shape: Sequence[int]) -> Optional[tuple[slice, slice]]:
    """The whole pixels (rows, cols) around a feature's extent (x0, y0)-(x1, y1) plus 2 px, within the image; None
    where nothing of it is: where eye_accents and lip_tint paint (and the realtime step crops a face's features)."""
    h, w = shape[:2]
    c0, r0 = max(0, int(np.floor(x0)) - 2), max(0, int(np.floor(y0)) - 2)
    c1, r1 = min(w, int(np.ceil(x1)) + 3), min(h, int(np.ceil(y1)) + 3)
    return (slice(r0, r1), slice(c0, c1)) if r1 > r0 and c1 > c0 else None


FIXED = 4  # bits: features are drawn from their landmarks to a 16th of a pixel


def _fixed(points: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """Points in FIXED-bit fixed point, in the crop `box`: rounded in the whole image's coordinates, then moved by
    whole pixels (drawn the same, pixel for pixel, as in the whole image)."""
    rows, cols = box
    return np.round(points * (1 << FIXED)).astype(np.int32) - (np.array([cols.start, rows.start], np.int32) << FIXED)


EYE_MIN_FACE = 60  # px: a narrower face's irises are not painted (eye_accents)
LIP_MIN_FACE = 40  # px: a narrower face's lips are not tinted (lip_tint)


def _irises(face: Face) -> list[tuple[int, np.ndarray, float, tuple]]:
    """The irises eye_accents paints on `face`: (centre landmark, centre, radius, extent (x0, y0, x1, y1) its box
    must hold: the iris and its eye's opening, since a polygon clipped by the box is drawn differently inside it)."""
    lm = face.landmarks
    if not face.has_irises or face.box.width < EYE_MIN_FACE:
        return []
    found = []
    for c_idx, ring in ((468, range(469, 473)), (473, range(474, 478))):
        r = float(np.mean(np.linalg.norm(lm[list(ring)] - lm[c_idx], axis=1)))
        c = lm[c_idx, :2]
        if r < 2.0:
            continue
        lids = lm[list(LEFT_EYE if c_idx == 473 else RIGHT_EYE), :2]
        found.append((c_idx, c, r, (min(c[0] - r, lids[:, 0].min()), min(c[1] - r, lids[:, 1].min()),
                                    max(c[0] + r, lids[:, 0].max()), max(c[1] + r, lids[:, 1].max()))))
    return found


def _lips(face: Face) -> Optional[np.ndarray]:
    """The lips' outer contour lip_tint tints on `face` (x, y), or None where it tints none."""
    if not face.has_mesh or face.box.width < LIP_MIN_FACE:
        return None
    return face.landmarks[list(LIPS_OUTER), :2]


def accents_box(face: Face, shape: Sequence[int]) -> Optional[tuple[slice, slice]]:
    """The box that holds every box eye_accents and lip_tint paint `face` in (the union of feature_boxes is the
    feature_box of their extents' union), or None where they paint none of it: painting a crop of it gives the same
    pixels as painting the whole image (the realtime step's face_accents)."""
    extents = [extent for *_, extent in _irises(face)]
    lips = _lips(face)
    if lips is not None:
        extents.append((*lips.min(axis=0), *lips.max(axis=0)))
    if not extents:
        return None
    e = np.array(extents, np.float64)
    return feature_box(e[:, 0].min(), e[:, 1].min(), e[:, 2].max(), e[:, 3].max(), shape)


def eye_accents(img: np.ndarray, faces: Sequence[Face], character: Character, strength: float) -> np.ndarray:
    """Webtoon eyes: the iris filled with the character's eye colour and a catch-light. `img`: float RGB in [0, 1],
    or uint8 (the realtime step's frame; each iris is worked in float and rounded back). A copy; each iris is
    painted in its own box (what lies outside it is unchanged whatever the image's size: the same pixels as painting
    the whole image)."""
    if strength <= 0.0:
        return img
    out = img.copy()
    eye = (hex_to_rgb(character.eye_color)[0] * 0.8).reshape(1, 1, 3)
    for face in faces:
        lm = face.landmarks
        for c_idx, c, r, extent in _irises(face):
            box = feature_box(*extent, img.shape)
            if box is None:
                continue
            shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
            origin = np.array([box[1].start, box[0].start], np.float64)
            mask = disc_coverage(shape, np.asarray(c, np.float64) - origin, r)
            # Only inside the eye opening: the lids clip the iris.
            mask *= _eye_opening(shape, lm, c_idx, box)
            m = (mask * 0.85 * strength)[..., None]
            part = out[box] if out.dtype != np.uint8 else out[box].astype(np.float32) / np.float32(255.0)
            part = part * (1 - m) + eye * m
            hl = disc_coverage(shape, np.array([c[0] + 0.35 * r, c[1] - 0.35 * r]) - origin, max(0.25, r * 0.28))
            hl *= mask > 0
            part = part * (1 - hl[..., None] * strength) + hl[..., None] * strength
            out[box] = part if out.dtype != np.uint8 else to_u8(part)
    return out


HAIR_LIFT = 12.0  # L*: hair is lifted at most this far above the photo's (a character's floor may lift black to 25-35)


def _tone_curve(src_L: np.ndarray, out_L: np.ndarray, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layer's lightness as a function of the photo's: (photo L* at bin centres, mean layer L* there), from the
    pixels outside `exclude` (bins of 5 L* with at least 50 pixels). How the character maps tones. The callers pass
    every other pixel each way."""
    keep = ~exclude
    src, out = src_L[keep], out_L[keep]
    bins = np.clip((src / 5.0).astype(np.int32), 0, 20)
    n = np.bincount(bins, minlength=21)
    mean = np.bincount(bins, weights=out, minlength=21) / np.maximum(n, 1)
    ok = n >= 50
    centres = np.arange(21) * 5.0 + 2.5
    return (centres[ok], mean[ok]) if ok.sum() >= 2 else (np.array([0.0, 100.0]), np.array([0.0, 100.0]))


def _chroma_map(src_lab: np.ndarray, out_lab: np.ndarray, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gain, offset) per chroma channel (a*, b*) with layer ≈ gain · photo + offset, fitted by least squares on the
    pixels outside `exclude` (the callers pass every other pixel each way): the character's saturation and tint."""
    keep = ~exclude
    gain, offset = np.ones(2, np.float32), np.zeros(2, np.float32)
    for c in (1, 2):
        x, y = src_lab[..., c][keep], out_lab[..., c][keep]
        if len(x) < 100 or float(x.var()) < 1e-3:
            continue
        g = float(np.clip(((x - x.mean()) * (y - y.mean())).mean() / x.var(), 0.0, 2.0))
        gain[c - 1], offset[c - 1] = g, float(y.mean() - g * x.mean())
    return gain, offset


HAIR_JOIN = 3.0  # px at scale 1: pieces of hair this close to each other are one head's (hair_shading's levels)


def _per_head(sel: np.ndarray, spread: int, join: int = 0, whose: Optional[np.ndarray] = None
              ) -> tuple[np.ndarray, list]:
    """(label image, [(label, slices of its box), ...]): each head's hair its own label from 1, reaching `spread`
    pixels past its edge (the soft rim of the mask); 0 elsewhere. With `whose` (the hair's own labels,
    studio.perception.hair_and_heads) a head is the pixels of `sel` one face's: a blonde beside brunettes is a head
    of her own though their masks touch through a dark background, and a face's hair whose mask breaks in pieces
    one head still. Without, a head is the pieces of `sel` within 2 `join` px of each other: a lock the mask cut off
    by a few pixels took its own levels, and the rim round it (a square, the dilation's) its own tone, a box of
    another brown in the hair that came and went with a grey level of noise."""
    if whose is None:
        near = cv2.dilate(sel.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * join + 1,) * 2))
        n, cc, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)  # join 0: the pieces themselves
        cc[~sel] = 0
        boxes = [(i, (slice(y, y + h), slice(x, x + w))) for i, (x, y, w, h) in enumerate(stats[1:, :4], 1)]
    else:
        present = np.unique(whose[sel])
        present = present[present > 0]
        table = np.zeros(int(whose.max()) + 1, np.int32)
        table[present] = np.arange(1, len(present) + 1)
        cc = np.where(sel, table[whose], 0).astype(np.int32)
        boxes = list(enumerate(find_objects(cc), 1))  # each label's box in one pass (a crowd has hundreds)
    grown = cv2.dilate(cc.astype(np.float32), np.ones((2 * spread + 1, 2 * spread + 1), np.uint8)).astype(np.int32)
    return np.where(cc > 0, cc, grown), boxes


def _by_head(heads: np.ndarray, *values: np.ndarray) -> tuple:
    """Each float32 value array (one value per label) at the pixels of the label image `heads`: `value[heads]`, by
    table lookups (cv2.LUT) where the labels fit a byte (a close-up's hair, four maps: 2.0 -> 0.8 ms)."""
    if max(len(v) for v in values) > 256:
        return tuple(v[heads] for v in values)
    labels = heads.astype(np.uint8)
    out = []
    for v in values:
        table = np.zeros(256, np.float32)
        table[:len(v)] = v
        out.append(cv2.LUT(labels, table))
    return tuple(out)


HAIR_BAND_LIFT = 16.0  # L* the highlight band adds at hair_highlight 1 (black hair turned grey at 28)


def _step_over(x: np.ndarray, ref: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """smoothstep(ref + lo, ref + hi, x) for float32 arrays (`ref` per pixel), in OpenCV passes."""
    k = 1.0 / (hi - lo)
    d = cv2.subtract(x, ref)
    t = clip_unit(cv2.addWeighted(d, k, d, 0.0, -lo * k, dst=d), inplace=True)
    return cv2.multiply(cv2.multiply(t, t), cv2.addWeighted(t, -2.0, t, 0.0, 3.0))


def _toward(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x + (y - x) w for float32 arrays of one channel (`y` a temporary, written over)."""
    return cv2.add(x, cv2.multiply(cv2.subtract(y, x, dst=y), w, dst=y))


HAIR_HUE_REACH = 10.0  # a*b* units: how far a hair's colour may stray from its head's (hair_shading, _near_hue)


def _near_hue(a: np.ndarray, b: np.ndarray, ta: np.ndarray, tb: np.ndarray, reach: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Chroma (a, b) pulled to within `reach` of (ta, tb) per pixel, along the line between them (float32 arrays, in
    OpenCV passes). The layer under a red crown's shine was the palette's pale grey; moved by the head's offset it
    was painted an olive patch in orange hair."""
    da, db = cv2.subtract(a, ta), cv2.subtract(b, tb)
    k = gradient_magnitude(da, db)  # (cv2.magnitude depends on its buffers' addresses: studio.imageops)
    k = cv2.divide(reach, cv2.max(k, reach, dst=k), dst=k)  # reach / max(|d|, reach)
    return (cv2.add(ta, cv2.multiply(da, k, dst=da), dst=da), cv2.add(tb, cv2.multiply(db, k, dst=db), dst=db))


def _highlight_band(Lh: np.ndarray, hi: np.ndarray, sel: np.ndarray, scale: float) -> np.ndarray:
    """The hair's highlight band, 0..1: where the smoothed light is above the head's 90th percentile, keeping only
    pieces large enough to read as a band of light (at least (12 · scale)² px); specks are dropped."""
    band = _step_over(Lh, hi, -2.0, 1.0)
    core = ((band > 0.5) & sel).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= (12.0 * scale) ** 2
    keep[0] = False
    near = cv2.dilate(keep[labels].astype(np.uint8), np.ones((5, 5), np.uint8))
    return band * cv2.GaussianBlur(near.astype(np.float32), (0, 0), 1.0)


def hair_shading(img: np.ndarray, shaded: np.ndarray, hair: Optional[np.ndarray], character: Character,
                 strength: float, coarse: int = 1, strands: bool = True, heads: Optional[np.ndarray] = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Hair as a webtoon colourist paints it: two tones, a light band where the light hits, grouped strands.

    Returns (shaded image, strand ink alpha). Each head's hair keeps its own lightness: the photo's, through the
    character's tone mapping (measured on the rest of the layer), so black hair stays black beside blond, and thin
    short hair that the abstraction merged into a light background is dark again. Its shadow and highlight are cut
    at that head's own levels; its chroma is the layer's moved to the head's colour and kept within HAIR_HUE_REACH
    of it (`_near_hue`). Strands are the long, thin edge fragments inside the hair (short ones are dropped),
    drawn thin; the highlight is the brightest part of the heavily smoothed hair.

    `coarse` > 1 (the realtime step: realtime.student.shade_hair) smooths the hair's light at 1/coarse of the size and
    takes each head's levels from every coarse-th pixel each way: the same shapes (they come from light smoothed over
    6 to 9 px at 512 px) for a fraction of the time. `strands=False` leaves the strands out (their alpha is zeros).
    `heads` tells the heads apart: whose hair each pixel is (studio.perception.hair_and_heads); None: the mask's
    connected pieces, which join through a dark background round a group.
    The hair is painted in its own box (`_hair_box`; the tone and colour maps are measured on the whole layer): the
    same pixels as over the whole image, and the layer outside it unchanged (two people: 59 -> 22 ms at 768 px).
    """
    if hair is None or strength <= 0.0 or hair.max() < 0.3:
        return shaded, np.zeros(img.shape[:2], np.float32)
    scale = max(1.0, image_scale(img.shape))
    m = np.clip(hair, 0, 1).astype(np.float32)
    sel = m > 0.5
    if sel.sum() < 200:
        return shaded, np.zeros(img.shape[:2], np.float32)
    sigma = 3.0 * scale
    # The hair is painted in its box, grown by what its blurs and dilations read: the same pixels as over the whole
    # image, and the layer outside left as it is (not round-tripped through L*a*b*).
    crop = _hair_box(m, sigma, coarse)
    # The photo and the layer in L*a*b* on every other pixel (where the character's mapping is measured) and in the
    # box. The conversion is per pixel: where the box is most of the image, each is converted once and both read.
    if m[crop].size >= 0.5 * m.size:
        src_lab, lab = rgb_to_lab(img), rgb_to_lab(shaded)
        src2, lab2, src_lab, lab = src_lab[::2, ::2], lab[::2, ::2], src_lab[crop], lab[crop]
    else:
        src2, lab2 = rgb_to_lab(img[::2, ::2]), rgb_to_lab(shaded[::2, ::2])
        src_lab, lab = rgb_to_lab(img[crop]), rgb_to_lab(shaded[crop])
    # How the character maps the photo's tones and colours: measured on every other pixel of the rest of the layer.
    rest = m[::2, ::2] > 0.05
    centres, curve = _tone_curve(src2[..., 0], lab2[..., 0], rest)
    gain, offset = _chroma_map(src2, lab2, rest)
    img, m, sel = img[crop], m[crop], sel[crop]
    src_L = src_lab[..., 0]

    def smoothed(s: float) -> np.ndarray:  # the hair's own light, blurred within the hair
        if coarse == 1:
            return cv2.GaussianBlur(src_L * m, (0, 0), s) / np.maximum(cv2.GaussianBlur(m, (0, 0), s), 1e-3)
        h, w = m.shape
        size = (max(1, w // coarse), max(1, h // coarse))
        lm, mm = (cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in (src_L * m, m))
        light = cv2.GaussianBlur(lm, (0, 0), s / coarse) / np.maximum(cv2.GaussianBlur(mm, (0, 0), s / coarse), 1e-3)
        return cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)

    # Shadow and highlight shapes come from the hair's light smoothed at 3 and 2 sigma: at 1 sigma curls made a dapple
    # of small dark blots, and salt-and-pepper hair a camouflage of light patches.
    Lb, Lh = smoothed(3 * sigma), smoothed(2 * sigma)
    heads, boxes = _per_head(sel, int(round(3 * sigma)), int(round(HAIR_JOIN * scale)),
                             None if heads is None else heads[crop])
    # Per head; [0] is the whole hair, for rim pixels no head reaches.
    n = len(boxes) + 1
    med, hi, tone = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
    ab, target = np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32)
    for i, box in [(0, (slice(None), slice(None)))] + boxes:
        part = sel[box] if i == 0 else (heads[box] == i) & sel[box]
        if coarse > 1 and part[::coarse, ::coarse].any():  # every coarse-th pixel, unless that misses a small piece
            box, part = tuple(slice(b.start, b.stop, coarse) for b in box), part[::coarse, ::coarse]
        med[i] = np.median(Lb[box][part])
        hi[i] = np.percentile(Lh[box][part], 90)
        own = float(np.median(src_L[box][part]))
        tone[i] = min(float(np.interp(own, centres, curve)), own + HAIR_LIFT)
        # The layer's own chroma moved so that its median is the photo's through the character's colour map.
        target[i] = np.median(src_lab[box][part][:, 1:], axis=0) * gain + offset
        ab[i] = target[i] - np.median(lab[box][part][:, 1:], axis=0)
    med, hi, tone, da, db, ta, tb = _by_head(heads, med, hi, tone, ab[:, 0], ab[:, 1], target[:, 0], target[:, 1])
    # Two tones: shadow below the head's median, base above; then the highlight band. The hair's L* (`base_L`) and
    # chroma blended over the layer's by the mask times `strength`, channel by channel in OpenCV passes (numpy's
    # expressions over the three channels took 9 of a close-up's 23 ms in the realtime step).
    contrast = 8.0 * character.shading.contrast
    band = cv2.multiply(_highlight_band(Lh, hi, sel, scale), float(character.shading.hair_highlight))
    lit = _step_over(Lb, med, -6.0, -2.0)  # 1 - the shadow
    base_L = cv2.scaleAdd(band, HAIR_BAND_LIFT, cv2.addWeighted(tone, 1.0, lit, contrast, -contrast))
    w = cv2.multiply(m, float(strength))
    vivid = cv2.addWeighted(band, 0.2, band, 0.0, 1.0)  # the band's chroma a fifth stronger
    L, a, b = cv2.split(lab)
    ha, hb = _near_hue(cv2.add(a, da), cv2.add(b, db), ta, tb, HAIR_HUE_REACH)  # the hair's chroma
    out = shaded.astype(np.float32)  # a copy
    out[crop] = lab_to_rgb(cv2.merge([_toward(L, base_L, w), _toward(a, cv2.multiply(ha, vivid, dst=ha), w),
                                      _toward(b, cv2.multiply(hb, vivid, dst=hb), w)]))
    alpha = np.zeros(shaded.shape[:2], np.float32)
    if not strands:
        return out, alpha
    # Strands: thin edges of the unsmoothed hair that are long and thin.
    gray = cv2.GaussianBlur(src_L, (0, 0), 0.8 * scale)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy) * sel
    thr = float(np.percentile(mag[sel], 85)) if sel.any() else 1.0
    edges = (cv2.Canny((gx * 2.55).astype(np.int16), (gy * 2.55).astype(np.int16), thr * 1.3, thr * 2.55,
                       L2gradient=True) > 0) & sel
    n, labels, stats, _ = cv2.connectedComponentsWithStats(edges.astype(np.uint8), connectivity=8)
    long_side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = (long_side >= 24 * scale) & (stats[:, cv2.CC_STAT_AREA] <= 2.0 * long_side)
    keep[0] = False
    thin = keep[labels]
    alpha[crop] = np.clip(cv2.GaussianBlur(thin.astype(np.float32), (0, 0), 0.5 * scale) * 0.45 * strength, 0, 1)
    return out, alpha


def _hair_box(m: np.ndarray, sigma: float, coarse: int) -> tuple[slice, slice]:
    """`hair_shading`'s box: where the hair mask `m` is above 0, grown by the reach of its widest blur (4 sigma of
    its 3-sigma smoothing) and a few pixels for its dilations and resizes, on the `coarse` grid (its corner and, but
    at the image's edge, its size: resized by 1/coarse it is the whole image's resize there)."""
    grow = int(np.ceil(12.0 * sigma)) + 4
    box = []
    for axis, n in ((1, m.shape[0]), (0, m.shape[1])):
        on = np.flatnonzero(m.any(axis=axis))
        a = max(0, on[0] - grow) // coarse * coarse
        b = a + -(-(on[-1] + 1 + grow - a) // coarse) * coarse
        box.append(slice(a, min(n, b)))
    return tuple(box)


def lip_tint(img: np.ndarray, faces: Sequence[Face], character: Character, strength: float) -> np.ndarray:
    """Lips in the character's blush hue (a photo's lips quantise to a dull brown otherwise). `img`: float RGB in
    [0, 1], or uint8 (the realtime step's frame). A copy; the lips are tinted in their own box, the rest unchanged."""
    if strength <= 0.0:
        return img
    tint = hex_to_lab(character.blush_color)
    out = img.copy()
    for face in faces:
        lips = _lips(face)
        if lips is None:
            continue
        box = feature_box(*lips.min(axis=0), *lips.max(axis=0), img.shape)
        if box is None:
            continue
        mask = fill_coverage((box[0].stop - box[0].start, box[1].stop - box[1].start), [_fixed(lips, box)], FIXED,
                             holes=[_fixed(face.landmarks[list(LIPS_INNER), :2], box)])
        if not mask.any():
            continue
        lab = rgb_to_lab(out[box])  # uint8 or float
        target = lab.copy()
        # Keep the lips' own light and shade; take the hue and chroma of the character's blush, a little deeper.
        target[..., 0] = lab[..., 0] * 0.9
        target[..., 1:] = tint[1:] * 1.1
        m = (mask * 0.7 * strength)[..., None]
        part = lab_to_rgb(lab * (1 - m) + target * m)
        part = part if out.dtype != np.uint8 else to_u8(part)
        out[box] = np.where(m > 0, part, out[box])  # the box's other pixels as they were, not round-tripped
    return out


def _eye_opening(shape: Sequence[int], lm: np.ndarray, iris_center: int,
                 box: Optional[tuple[slice, slice]] = None) -> np.ndarray:
    """The eye's opening (its lids' contour, filled and anti-aliased) on an image of `shape`, or on the crop `box`
    of the image (`shape` then the crop's)."""
    contour = LEFT_EYE if iris_center == 473 else RIGHT_EYE
    box = box or (slice(0, shape[0]), slice(0, shape[1]))
    return fill_coverage(shape, [_fixed(lm[list(contour), :2], box).reshape(-1, 1, 2)], FIXED)


def feather(mask: np.ndarray, radius_px: float) -> np.ndarray:
    m = np.clip(mask.astype(np.float32), 0, 1)
    if radius_px <= 0:
        return m
    return cv2.GaussianBlur(m, (0, 0), radius_px)


def blend(person_layer: np.ndarray, background_layer: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = np.clip(mask, 0, 1)[..., None]
    return (person_layer * m + background_layer * (1 - m)).astype(np.float32)


def face_region(shape: Sequence[int], faces: Sequence[Face], shrink: float = 1.0) -> np.ndarray:
    """Mask of the face ovals (scaled about their centre by `shrink`), anti-aliased."""
    ovals = []
    for f in faces:
        if not f.has_mesh:
            continue
        oval = f.landmarks[list(FACE_OVAL)]
        c = oval.mean(axis=0)
        ovals.append(np.round((c + (oval - c) * shrink) * (1 << FIXED)).astype(np.int32).reshape(-1, 1, 2))
    return fill_coverage(shape, ovals, FIXED)


def person_regions(shape: Sequence[int], boxes: Sequence, person: np.ndarray, scale: int = 4) -> list[np.ndarray]:
    """One soft mask (H, W) float32 per face box: the part of the person mask that belongs to that face's person.

    Each pixel goes to the nearest face in face units (a face width sideways, a face height above, three face
    heights below: the body hangs under the face), within 2.5 of those units (about the shoulders sideways and
    the feet below). The face's own ellipse is always in, as the person mask can miss a face. Computed at
    1/`scale` resolution, feathered, and resized back."""
    h, w = shape[:2]
    hs, ws = max(1, -(-h // scale)), max(1, -(-w // scale))
    small = cv2.resize(person.astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
    ys = ((np.arange(hs, dtype=np.float32) + 0.5) * h / hs)[:, None]
    xs = ((np.arange(ws, dtype=np.float32) + 0.5) * w / ws)[None, :]
    best = np.full((hs, ws), np.inf, np.float32)
    label = np.full((hs, ws), -1, np.int32)
    ellipses = []
    for i, b in enumerate(boxes):
        cx, cy = b.center
        fw, fh = max(b.width, 1.0), max(b.height, 1.0)
        dx = (xs - cx) / fw
        dy = (ys - cy) / fh
        d = dx * dx + np.where(dy > 0, dy / 3.0, dy) ** 2
        take = (d < best) & (d <= 2.5 ** 2)
        best[take], label[take] = d[take], i
        ellipses.append((dx / 0.65) ** 2 + (dy / 0.75) ** 2 <= 1.0)  # the face box, a little larger
    out = []
    for i, b in enumerate(boxes):
        m = np.maximum(np.where(label == i, small, 0.0), ellipses[i].astype(np.float32))
        sigma = max(0.8, 0.08 * max(b.width, 1.0) / (w / ws))
        m = cv2.GaussianBlur(m, (0, 0), sigma)
        out.append(np.clip(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0))
    return out
