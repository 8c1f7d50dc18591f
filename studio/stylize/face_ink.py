"""Face strokes: how a webtoon artist inks a face, from the face mesh and the photo.

- The eyes: a lash line along the upper lid (at most a 45th of the face, so heavy-ink characters do not fill the eye)
  and a thin lower lid; lips: the mouth opening and a light lower lip; a light hint under the nose.
- The brows in the person's own shape (`photo_brows`: the pixels darker than the skin around the landmark brows),
  lightly: the painted face (`face_paint.py`) gives them their colour.
- The photo's own thin dark lines between the brows and the lip (`photo_lines`: eyewear frames, lid creases, the sides
  of the nose) on faces large enough for them to be lines.
Each face is drawn in its own box (`face_box`), so a crowd costs a few small layers. The classic and SD teachers and
the realtime step (realtime.student) draw the same strokes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from ..color import smoothstep, to_u8
from ..imageops import disc_morphology, fill_coverage, stroke_coverage
from ..perception.faces import (FACE_OVAL, LEFT_BROW, LEFT_EYE, LIPS_INNER, LIPS_OUTER, NOSE_BOTTOM, RIGHT_BROW,
                                RIGHT_EYE)
from ..types import Face

UPPER_LIP_TOP = 0  # face-mesh point at the top of the upper lip
# Brows are hair: the painted face (face_paint) gives them their own colour and the ink only accents their shape. At
# 0.85 the ink turned grey and fair brows black. This and a nose hint at 0.3 (was 0.6), on the 37 faces of three group
# photos (studio.quality's measures): same person 89 -> 95 % (classic), 59 -> 86 % (noir), median distance 0.51 -> 0.46.
BROW_INK = 0.4
PHOTO_LINES_MIN_FACE = 80  # px: on smaller faces the photo's thin lines are a pixel or two, noise rather than lines


def face_box(face: Face, shape: Sequence[int]) -> Optional[tuple[slice, slice]]:
    """(rows, cols) around a face's mesh, padded by a tenth of its size + 4 px (room for its strokes) and clipped to
    the image; None without a mesh or when nothing is left."""
    if not face.has_mesh:
        return None
    lo, hi = face.landmarks[:, :2].min(axis=0), face.landmarks[:, :2].max(axis=0)
    pad = 0.1 * float(max(hi - lo)) + 4
    x0, y0 = max(0, int(lo[0] - pad)), max(0, int(lo[1] - pad))
    x1, y1 = min(int(shape[1]), int(hi[0] + pad) + 1), min(int(shape[0]), int(hi[1] + pad) + 1)
    return (slice(y0, y1), slice(x0, x1)) if x1 > x0 and y1 > y0 else None


def face_ink(shape: Sequence[int], faces: Sequence[Face], line: float, weight: float = 1.0,
             image: Optional[np.ndarray] = None) -> np.ndarray:
    """Clean strokes for face features from landmarks: eyes (heavier upper lid), brows, lips. Each face is drawn in
    its own box (face_box), so a crowd costs a few small layers, not a full-frame layer per face. With the photo
    (`image`, float RGB or uint8), brows are inked in the person's own shape (`photo_brows`) instead of a filled
    landmark outline, which gives everyone the same heavy brow."""
    h, w = shape[:2]
    l = float(np.clip(line, 0.0, 1.0))
    canvas = np.zeros((h, w), np.float32)
    if l <= 0.0:
        return canvas
    ss = 4  # draw at 4x sub-pixel precision
    fade = float(smoothstep(0.0, 0.35, l))  # applied per layer: max(a, b) * k == max(a * k, b * k)
    for face in faces:
        box = face_box(face, shape)
        if box is None:
            continue
        fw = face.box.width
        if fw < 24:
            continue
        base = max(1.0, fw / 110.0) * weight * (0.5 + l)
        rows, cols = box
        lm = face.landmarks[:, :2] - np.array([cols.start, rows.start], np.float32)  # into the box
        layer = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)

        def stroke(idx, thick, closed=False, value=1.0):  # anti-aliased; where strokes cross, the darker
            drawn = stroke_coverage(layer.shape, np.round(lm[list(idx)] * (1 << ss)).astype(np.int32), closed, thick,
                                    ss)
            if drawn is not None:
                at, cov = drawn
                np.maximum(layer[at], cov * np.float32(value), out=layer[at])

        for eye in (LEFT_EYE, RIGHT_EYE):
            n = len(eye)
            upper = eye[: n // 2 + 1]
            lower = eye[n // 2:] + eye[:1]
            # The lash line carries the eye, but never fills it: a heavy-ink character (noir, weight 1.8) drew lids a
            # third of the eye's height thick and its eyes read as black holes. At most a 45th of the face.
            lid = min(2.2 * base, max(1.0, fw / 45.0))
            stroke(upper, lid)
            stroke(lower, 0.36 * lid, value=0.7)
        if image is not None:
            crop = image[box]
            grey = cv2.cvtColor(crop if crop.dtype == np.uint8 else to_u8(crop), cv2.COLOR_RGB2GRAY)
            layer = np.maximum(layer, photo_brows(grey, lm, fw))
            if fw >= PHOTO_LINES_MIN_FACE:
                layer = np.maximum(layer, photo_lines(grey, lm, fw))
        else:
            for brow in (LEFT_BROW, RIGHT_BROW):  # a filled, tapered shape, as a webtoon brow is drawn
                pts = np.round(lm[list(brow)] * (1 << ss)).astype(np.int32).reshape(-1, 1, 2)
                np.maximum(layer, fill_coverage(layer.shape, [pts], ss) * np.float32(0.8), out=layer)
                stroke(brow, 0.6 * base, closed=True, value=0.8)
        stroke(LIPS_INNER, mouth_stroke(lm, fw, base), closed=True, value=0.9)
        # A light hint under the nose: the painted face (face_paint) shows the nose's own shading, and a full stroke
        # along the landmarks drew everyone the same nose (see BROW_INK for what the two lighter strokes measure).
        stroke(NOSE_BOTTOM, 0.9 * base, value=0.3)
        stroke(LIPS_OUTER[len(LIPS_OUTER) // 2:], 0.7 * base, value=0.35)
        # On a small face a one-pixel stroke is a tenth of an eye: lighter there (on three crowd and group photos,
        # with fewer bands on small faces too: same person 76 -> 80 %, median distance 0.48 -> 0.45).
        small = float(smoothstep(24.0, 64.0, fw))
        canvas[box] = np.maximum(canvas[box], layer * (fade * (0.4 + 0.6 * small)))
    return canvas


def mouth_stroke(lm: np.ndarray, face_width: float, base: float) -> float:
    """The mouth opening's stroke width: at most as heavy as the lash line, and on an open mouth at most a third of
    the opening's height, so the teeth stay. Noir's 2.3-px stroke on the small faces of group_dim_restaurant_01 filled
    83-99 % of their smiles' openings: the teeth were drawn as a black hole."""
    width = min(base, max(1.0, face_width / 45.0))
    inner = lm[list(LIPS_INNER)].astype(np.float32)
    opening = float(cv2.contourArea(inner)) / max(1.0, float(np.ptp(inner[:, 0])))  # mean height of the opening
    if opening > 0.02 * face_width:  # open: a closed mouth's line keeps its width
        width = min(width, max(1.0, opening / 3.0))
    return width


def grown(shape: tuple, polygons: Sequence[np.ndarray], radius: int) -> np.ndarray:
    """uint8 0/1 of `shape`: the polygons (int32, (n, 1, 2)) filled and grown by `radius` px, drawn as their fill and
    their outline in lines 2 x `radius` px thick (OpenCV draws thick lines with round ends and joins: a polygon's sum
    with a disc). The set `cv2.dilate` of the fill with a (2r + 1)-px MORPH_ELLIPSE gives but for parts of a
    pixel-wide rim, in integer arithmetic, at a cost that does not grow with the radius: a 640-px face's oval grown by
    38 px over its crop, 42 ms -> 0.1 ms."""
    out = np.zeros(shape[:2], np.uint8)
    for poly in polygons:  # one at a time: overlapping polygons filled together leave their overlap out
        cv2.fillPoly(out, [poly], 1)
    if radius > 0:
        cv2.polylines(out, list(polygons), True, 1, thickness=2 * int(radius))
    return out


def photo_brows(grey: np.ndarray, lm: np.ndarray, face_width: float) -> np.ndarray:
    """Ink alpha for the brows as the photo has them: within a band around each landmark brow, the pixels clearly
    darker than the skin around them (their real shape, thickness and gaps), softened by a pixel. `grey`: the face's
    crop, uint8; `lm`: landmarks in its coordinates. Worked within the brows' own box and their band's reach around
    it, which gives the same alpha as the whole crop (bit for bit; nothing is drawn outside it) for a fraction of its
    cost on a large face."""
    r = max(1, int(round(0.035 * face_width)))
    h, w = grey.shape
    pts = [np.round(lm[list(brow)]).astype(np.int32).reshape(-1, 1, 2) for brow in (LEFT_BROW, RIGHT_BROW)]
    allpts = np.concatenate(pts)[:, 0]
    pad = r + 4  # the band's reach, and the final blur's
    x0, y0 = max(0, int(allpts[:, 0].min()) - pad), max(0, int(allpts[:, 1].min()) - pad)
    x1, y1 = min(w, int(allpts[:, 0].max()) + pad + 1), min(h, int(allpts[:, 1].max()) + pad + 1)
    out = np.zeros((h, w), np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    sub = grey[y0:y1, x0:x1].astype(np.float32)
    region = grown(sub.shape, [poly - np.array([x0, y0], np.int32) for poly in pts], r) > 0
    if region.sum() < 8:
        return out
    skin = float(np.percentile(sub[region], 85))  # the skin between and around the brow hairs
    depth = max(12.0, 0.25 * skin)  # how much darker a brow hair is, at least
    out[y0:y1, x0:x1] = smoothstep(0.3, 0.8, (skin - sub) / depth) * region
    return cv2.GaussianBlur(out, (0, 0), 0.7) * BROW_INK


def photo_lines(grey: np.ndarray, lm: np.ndarray, face_width: float) -> np.ndarray:
    """Ink alpha for the thin dark lines the photo has around the eyes and nose: eyewear frames, lid creases, the
    sides of the nose, strong age lines there. Thin means narrower than a twentieth of the face (a black-hat filter:
    broad shadows do not respond); dark means clearly darker than the skin around them. Eye openings, lips and
    brows are left to their own strokes; specks are dropped. `grey`: the face's crop, uint8; `lm`: landmarks in its
    coordinates."""
    h, w = grey.shape
    k = max(3, int(0.05 * face_width) | 1)
    r = max(1, int(0.06 * face_width))
    # Between the brows and the mouth: where eyewear, lid creases and the nose are. The forehead's hair tufts and
    # a beard's texture are not lines (a beard is a hair region). Worked on those rows and as many more as the
    # dilations and the black hat reach, which gives the same alpha as the whole crop (bit for bit) for half its cost:
    # a 640-px webcam close-up's face, 69 -> 35 ms per frame.
    top = int(max(0, lm[list(LEFT_BROW) + list(RIGHT_BROW), 1].min() - 0.05 * face_width))
    bottom = int(min(h, lm[UPPER_LIP_TOP, 1]))
    if bottom <= top:
        return np.zeros((h, w), np.float32)
    y0, y1 = max(0, top - max(r, k) - 1), min(h, bottom + max(r, k) + 1)
    band = grey[y0:y1]
    shift = np.array([0, y0], np.int32)
    hat = disc_morphology(band, k, cv2.MORPH_BLACKHAT)
    face = grown(band.shape, [np.round(lm[list(FACE_OVAL)]).astype(np.int32).reshape(-1, 1, 2) - shift], r)
    features = [np.round(lm[list(idx)]).astype(np.int32).reshape(-1, 1, 2) - shift
                for idx in (LEFT_EYE, RIGHT_EYE, LIPS_OUTER, LEFT_BROW, RIGHT_BROW)]
    own = grown(band.shape, features, k // 2)  # drawn by their own strokes
    face[:top - y0] = 0
    face[bottom - y0:] = 0
    region = (face > 0) & (own == 0)
    if not region.any():
        return np.zeros((h, w), np.float32)
    skin = float(np.percentile(band[region], 60))
    depth = max(18.0, 0.3 * skin)  # how much darker than its surroundings a line must be to be inked fully
    alpha = smoothstep(0.45, 1.0, hat.astype(np.float32) / depth) * region
    n, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > 0.2).astype(np.uint8), connectivity=8)
    long_enough = np.zeros(n, bool)
    long_enough[1:] = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) >= 0.12 * face_width
    alpha *= long_enough[labels]
    full = np.zeros((h, w), np.float32)
    full[y0:y1] = alpha
    return cv2.GaussianBlur(full, (0, 0), 0.6) * 0.8
