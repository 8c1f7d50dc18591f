"""Skin: face-skin colour statistics, a person's tone, and a skin mask that covers neck, arms and hands.

The face mesh tells where skin surely is (cheeks, nose, chin: the face oval below the brows minus eyes, brows and
lips). Those pixels give each person's skin colour distribution in CIE L*a*b*: a robust mean and covariance of the
chroma (a*, b*) and a lightness range. The mask is every pixel of the person whose chroma is within a Mahalanobis
distance of one of those distributions, nearer it than grey, and whose lightness is plausible, so it follows the
same person's skin onto the neck, arms and hands (and, where the face is nearly grey, not onto grey clothes). Each
face's model is tabulated over the 8-bit Lab cube and applies within that face's reach (`skin_reach`: its person's
body, to a whole body below it), not over the whole photo: a small face's broad model marked white shirts and the
crowd behind as skin, and that face found or lost with a pixel's shift changed the whole mask. Without a face a
conservative generic YCrCb range is used.

    tone = skin_tone(image, face)            # SkinTone(L, a, b, ita) or None
    skin = skin_mask(image, faces, person)   # (H, W) float32 in [0, 1]

L*a*b* here is standard CIE units (L 0..100): OpenCV's 8-bit Lab is scaled (L*255/100, a+128, b+128), so
tones are measured on float32 RGB in [0, 1], which OpenCV converts to true units.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from ..color import rgb_to_lab
from ..types import Face, Mask, SkinTone
from .faces import FACE_OVAL, LEFT_BROW, LEFT_EYE, LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, check_image
from .person import guided_refine, remove_small_blobs

MAX_FACES_FOR_SKIN = 16  # the largest faces each contribute a colour model
# px: the photo is seen through a Gaussian of this sigma where the skin models are learnt and looked up (the mask is
# still refined along the photo's own edges), and where a head's hair colours are read (hair._head_hair). A pixel's
# chroma is its neighbourhood's, not its own noise: a grey level of noise is several a*b* units in the dark, and a
# dark face's model widened under it by 12 % (the audience's border face). Skin masks under noise (PSNR against the
# clean photo's, 512 px): the audience 33.8 -> 37.6 dB, the night group 37.1 -> 40.0, the medium-skin portrait 36.2 ->
# 39.3; the teacher under noise 39.1 -> 39.3, 39.8 -> 40.1, 41.5 -> 42.0, the child 41.3 -> 42.7 (docs/PERFORMANCE.md,
# twenty-second session).
COLOUR_SEEN_SIGMA = 0.7
MAHA_FULL, MAHA_ZERO = 2.2, 3.2  # chroma distance (in standard deviations) where skin weight starts to fall / is 0
# A face's skin model applies within this many face widths to each side, face heights above and below its centre
# (a full body below: a dancer's bare feet are 8-9 face heights down), fading out over REACH_SOFT more of each.
REACH_SIDE, REACH_ABOVE, REACH_BELOW, REACH_SOFT = 4.0, 3.0, 10.0, 0.5
GREY_SD = 2.0  # a*, b* units: the chroma spread of grey things (and the floor of a face's, chroma_model)
SKIN_OVER_GREY = 1.0  # skin's chroma is this many standard deviations nearer the face's skin than grey, or more
L_STEP = 4  # lightness bins of the lookup table, in OpenCV 8-bit L units (1.6 L*)
_L_CENTRES = ((np.arange(0, 256, L_STEP) + (L_STEP - 1) / 2.0) * 100.0 / 255.0).astype(np.float32)
_AB = np.arange(256, dtype=np.float32) - 128.0


def face_skin_roi(shape: Sequence[int], face: Face) -> tuple[int, int, np.ndarray]:
    """(y0, x0, mask): the surely-skin pixels of one face as a boolean mask of the region at (y0, x0)."""
    h, w = shape[:2]
    if face.has_mesh:
        lm = face.landmarks
        oval = lm[list(FACE_OVAL)]
        x0, y0 = max(0, int(np.floor(oval[:, 0].min()))), max(0, int(np.floor(oval[:, 1].min())))
        x1, y1 = min(w, int(np.ceil(oval[:, 0].max())) + 1), min(h, int(np.ceil(oval[:, 1].max())) + 1)
        if x1 <= x0 or y1 <= y0:
            return 0, 0, np.zeros((0, 0), bool)
        off = np.array([x0, y0], np.float32)
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(m, [np.round(oval - off).astype(np.int32)], 1)
        holes = np.zeros_like(m)
        for idx in (LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW, LIPS_OUTER):
            cv2.fillPoly(holes, [np.round(lm[list(idx)] - off).astype(np.int32)], 1)
        grow = max(3, int(face.box.width / 25))
        holes = cv2.dilate(holes, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        m &= 1 - holes
        # Below the brows only (the forehead is often covered by hair), along the face's own up axis
        # (chin → forehead), so a tilted head keeps its cheeks.
        up = lm[10] - lm[152]
        up = up / max(1e-6, float(np.hypot(*up)))
        brows = np.concatenate([lm[list(LEFT_BROW)], lm[list(RIGHT_BROW)]])
        lowest = float((brows @ up).min())
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        m[(xx * up[0] + yy * up[1]) > lowest] = 0
        return y0, x0, m.astype(bool)
    b = face.box
    x0, x1 = max(0, int(b.x0 + 0.3 * b.width)), min(w, int(b.x0 + 0.7 * b.width))
    y0, y1 = max(0, int(b.y0 + 0.45 * b.height)), min(h, int(b.y0 + 0.75 * b.height))
    return y0, x0, np.ones((max(0, y1 - y0), max(0, x1 - x0)), bool)


def face_skin_region(shape: Sequence[int], face: Face) -> np.ndarray:
    """Boolean (H, W) mask of surely-skin pixels of one face (cheeks, nose, chin; a central box without mesh)."""
    out = np.zeros(tuple(shape[:2]), bool)
    y0, x0, m = face_skin_roi(shape, face)
    out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
    return out


def face_skin_samples(image: np.ndarray, face: Face, lab: Optional[np.ndarray] = None, trim: bool = True) -> np.ndarray:
    """(N, 3) L*a*b* samples of the face's skin; with `trim`, shadows, highlights and beard are cut off."""
    y0, x0, m = face_skin_roi(image.shape, face)
    if m.size == 0 or not m.any():
        return np.zeros((0, 3), np.float32)
    sl = (slice(y0, y0 + m.shape[0]), slice(x0, x0 + m.shape[1]))
    pts = (lab[sl] if lab is not None else rgb_to_lab(np.ascontiguousarray(image[sl])))[m]
    if not trim or len(pts) < 10:
        return pts.reshape(-1, 3)
    lo, hi = np.percentile(pts[:, 0], [15, 92])
    return pts[(pts[:, 0] >= lo) & (pts[:, 0] <= hi)]


def skin_tone(image: np.ndarray, face: Face, lab: Optional[np.ndarray] = None) -> Optional[SkinTone]:
    """Robust (median) L*a*b* of a face's skin and its ITA angle; None when too little skin is visible.

    ITA = atan2(L* - 50, b*) in degrees: > 55 very light, 41..55 light, 28..41 intermediate, 10..28 tan,
    -30..10 brown, < -30 dark. It also depends on the light: a dim photo reads darker.
    """
    pts = face_skin_samples(image, face, lab)
    if len(pts) < 20:
        return None
    L, a, b = (float(v) for v in np.median(pts, axis=0))
    ita = float(np.degrees(np.arctan2(L - 50.0, b)))
    return SkinTone(L=L, a=a, b=b, ita=ita)


def chroma_model(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust mean and covariance of the (a*, b*) of skin samples: one refit without the outliers
    (glasses rims, stubble, nostrils) beyond 2.5 standard deviations."""
    ab = pts[:, 1:].astype(np.float64)
    mu, cov = ab.mean(axis=0), np.cov(ab.T) + np.eye(2) * 1.0
    d = ab - mu
    keep = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d) < 2.5 ** 2
    if keep.sum() >= 20:
        ab = ab[keep]
        mu, cov = ab.mean(axis=0), np.cov(ab.T)
    # A floor: a very even face must not give a needle-thin model (σ ≥ 2 units in a* and b*).
    return mu, cov + np.eye(2) * 4.0


def _skin_lut(pts: np.ndarray) -> np.ndarray:
    """One face's skin likelihood over the 8-bit Lab cube: (256 / L_STEP, 256, 256) uint8 in 0..255."""
    mu, cov = chroma_model(pts)
    inv = np.linalg.inv(cov).astype(np.float32)
    da, db = (_AB - mu[0])[:, None], (_AB - mu[1])[None, :]
    maha = np.sqrt(np.maximum(inv[0, 0] * da * da + 2 * inv[0, 1] * da * db + inv[1, 1] * db * db, 0))
    chroma = np.clip((MAHA_ZERO - maha) / (MAHA_ZERO - MAHA_FULL), 0.0, 1.0)
    # Skin is what is more standard deviations from grey (GREY_SD) than from this face's skin: where the face itself
    # is nearly grey (a black-and-white photo, a desaturated grade), grey shirts, fur and armour are not its skin.
    grey = np.hypot(_AB[:, None], _AB[None, :]) / GREY_SD
    chroma *= np.clip((grey - maha) / SKIN_OVER_GREY, 0.0, 1.0)
    lo, hi = np.percentile(pts[:, 0], [5, 99])
    light = np.clip((_L_CENTRES - (lo - 30.0)) / 8.0, 0, 1) * np.clip(((hi + 15.0) - _L_CENTRES) / 8.0, 0, 1)
    lut = np.zeros((len(_L_CENTRES), 256, 256), np.uint8)
    rows = np.nonzero(light > 0)[0]
    lut[rows] = np.round(light[rows, None, None] * chroma[None] * 255.0).astype(np.uint8)
    return lut


def _generic_skin(image: np.ndarray) -> np.ndarray:
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    cr, cb = ycc[..., 1], ycc[..., 2]
    inside = np.clip((cr - 135) / 6, 0, 1) * np.clip((173 - cr) / 6, 0, 1) * np.clip((cb - 77) / 6, 0, 1) * np.clip(
        (127 - cb) / 6, 0, 1)
    return inside.astype(np.float32)


def skin_reach(shape: Sequence[int], face: Face) -> Optional[tuple[int, int, int, int, np.ndarray]]:
    """Where a face's skin model applies: (y0, y1, x0, x1) and a float32 weight over that box, 1 within REACH_SIDE
    face widths to the side and REACH_ABOVE / REACH_BELOW face heights above / below the face's centre (an ellipse
    in those units), falling smoothly to 0 over REACH_SOFT more; smooth in the face's box, so a box that moves by a
    pixel moves the weight by little. None when the box lies outside the image."""
    h, w = shape[:2]
    cx, cy = face.box.center
    fw, fh = max(face.box.width, 1.0), max(face.box.height, 1.0)
    far = 1.0 + REACH_SOFT
    x0, x1 = max(0, int(cx - REACH_SIDE * far * fw)), min(w, int(np.ceil(cx + REACH_SIDE * far * fw)) + 1)
    y0, y1 = max(0, int(cy - REACH_ABOVE * far * fh)), min(h, int(np.ceil(cy + REACH_BELOW * far * fh)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    xs = (np.arange(x0, x1, dtype=np.float32) - cx) / (REACH_SIDE * fw)
    ys = (np.arange(y0, y1, dtype=np.float32) - cy) / fh
    ys = np.where(ys > 0, ys / REACH_BELOW, ys / REACH_ABOVE)
    t = np.clip((far - np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)) / REACH_SOFT, 0.0, 1.0)
    return y0, y1, x0, x1, (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def skin_mask(image: np.ndarray, faces: Sequence[Face], person: np.ndarray) -> Mask:
    """Soft skin mask (H, W) in [0, 1] over the whole person, seeded by each face's skin statistics, each face's
    within its reach (`skin_reach`)."""
    image = check_image(image)
    h, w = image.shape[:2]
    out = idx = None
    # What each face's model learns and is looked up on (without faces the generic range reads the photo itself).
    seen = cv2.GaussianBlur(image, (0, 0), COLOUR_SEEN_SIGMA) if faces else image
    for face in sorted(faces, key=lambda f: -f.box.area)[:MAX_FACES_FOR_SKIN]:
        pts = face_skin_samples(seen, face)
        reach = skin_reach(image.shape, face) if len(pts) >= 30 else None
        if reach is None:
            continue
        if idx is None:
            lab8 = cv2.cvtColor(seen, cv2.COLOR_RGB2Lab)
            idx = (lab8[..., 0] // L_STEP).astype(np.uint32) << 16
            idx |= lab8[..., 1].astype(np.uint32) << 8
            idx |= lab8[..., 2]
            out = np.zeros((h, w), np.float32)
        y0, y1, x0, x1, weight = reach
        one = _skin_lut(pts).ravel().take(idx[y0:y1, x0:x1]).astype(np.float32) * (weight / 255.0)
        np.maximum(out[y0:y1, x0:x1], one, out=out[y0:y1, x0:x1])
    if out is None:
        out = _generic_skin(image)
    # The face's own skin region is skin whatever its shading (nose highlights, cheek shadows).
    for face in faces:
        if not face.has_mesh:
            continue
        lm = face.landmarks
        oval = lm[list(FACE_OVAL)]
        x0, y0 = max(0, int(oval[:, 0].min())), max(0, int(oval[:, 1].min()))
        x1, y1 = min(w, int(oval[:, 0].max()) + 2), min(h, int(oval[:, 1].max()) + 2)
        if x1 <= x0 or y1 <= y0:
            continue
        off = np.array([x0, y0], np.float32)
        region = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(region, [np.round(oval - off).astype(np.int32)], 1)
        for idx_ in (LEFT_EYE, RIGHT_EYE, LIPS_OUTER):
            cv2.fillPoly(region, [np.round(lm[list(idx_)] - off).astype(np.int32)], 0)
        roi = out[y0:y1, x0:x1]
        np.maximum(roi, region.astype(np.float32) * 0.85, out=roi)
    # Smooth along the photo's edges, then keep it on the person: a soft cut, so the background next to
    # a silhouette (a beige wall) does not leave a skin-coloured rim.
    out = guided_refine(image, out, max(2.0, max(h, w) / 300), 1e-2)
    out *= np.clip((person - 0.15) / 0.35, 0.0, 1.0)
    out = remove_small_blobs(np.clip(out, 0.0, 1.0), 0.0003)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
