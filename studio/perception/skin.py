"""Skin: face-skin colour statistics, a person's tone, and a skin mask that covers neck, arms and hands.

The face mesh tells where skin surely is (cheeks, nose, chin: the face oval minus eyes, brows and lips).
Those pixels give each person's skin colour distribution in CIE L*a*b*; the mask is every pixel of the
person whose chroma is within a Mahalanobis distance of it (and whose lightness is plausible), so it
follows the same person's skin onto the neck, arms and hands. Without a face a conservative YCrCb range
is used.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from ..types import Face, SkinTone
from .faces import FACE_OVAL, LEFT_BROW, LEFT_EYE, LIPS_OUTER, RIGHT_BROW, RIGHT_EYE
from .person import remove_small_blobs

MAX_FACES_FOR_SKIN = 8


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB uint8 → CIE L*a*b* float32 in standard units (L 0..100)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def face_skin_region(shape: Sequence[int], face: Face) -> np.ndarray:
    """Boolean mask of surely-skin pixels of one face."""
    h, w = shape[:2]
    m = np.zeros((h, w), np.uint8)
    lm = face.landmarks
    if lm is not None and len(lm) >= 468:
        cv2.fillPoly(m, [np.round(lm[list(FACE_OVAL)]).astype(np.int32)], 1)
        holes = np.zeros((h, w), np.uint8)
        for idx in (LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW, LIPS_OUTER):
            cv2.fillPoly(holes, [np.round(lm[list(idx)]).astype(np.int32)], 1)
        grow = max(3, int(face.box.width / 25))
        holes = cv2.dilate(holes, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        m &= 1 - holes
        # Below the brows only: the forehead is often covered by hair.
        brow_y = float(np.concatenate([lm[list(LEFT_BROW)], lm[list(RIGHT_BROW)]])[:, 1].max())
        m[: max(0, int(brow_y)), :] = 0
    else:
        b = face.box
        x0, x1 = int(b.x0 + 0.3 * b.width), int(b.x0 + 0.7 * b.width)
        y0, y1 = int(b.y0 + 0.45 * b.height), int(b.y0 + 0.75 * b.height)
        m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 1
    return m.astype(bool)


def face_skin_samples(image: np.ndarray, face: Face, lab: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, 3) L*a*b* samples of the face's skin, with shadows, highlights and beard trimmed off."""
    lab = to_lab(image) if lab is None else lab
    pts = lab[face_skin_region(image.shape, face)]
    if len(pts) < 10:
        return pts.reshape(-1, 3)
    lo, hi = np.percentile(pts[:, 0], [15, 92])
    return pts[(pts[:, 0] >= lo) & (pts[:, 0] <= hi)]


def skin_tone(image: np.ndarray, face: Face) -> Optional[SkinTone]:
    """Robust L*a*b* of a face's skin and its ITA angle; None when too little skin is visible."""
    pts = face_skin_samples(image, face)
    if len(pts) < 20:
        return None
    L, a, b = (float(v) for v in np.median(pts, axis=0))
    ita = float(np.degrees(np.arctan2(L - 50.0, b)))
    return SkinTone(L=L, a=a, b=b, ita=ita)


def _generic_skin(image: np.ndarray) -> np.ndarray:
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    cr, cb = ycc[..., 1], ycc[..., 2]
    inside = np.clip((cr - 135) / 6, 0, 1) * np.clip((173 - cr) / 6, 0, 1) * np.clip((cb - 77) / 6, 0, 1) * np.clip(
        (127 - cb) / 6, 0, 1)
    return inside.astype(np.float32)


def skin_mask(image: np.ndarray, faces: Sequence[Face], person: np.ndarray) -> np.ndarray:
    """Soft skin mask (H, W) in [0, 1] over the whole person, seeded by each face's skin statistics."""
    h, w = image.shape[:2]
    lab = to_lab(image)
    out = np.zeros((h, w), np.float32)
    used = 0
    for face in sorted(faces, key=lambda f: -f.box.area)[:MAX_FACES_FOR_SKIN]:
        pts = face_skin_samples(image, face, lab)
        if len(pts) < 30:
            continue
        used += 1
        mu = pts[:, 1:].mean(axis=0)
        cov = np.cov(pts[:, 1:].T) + np.eye(2) * 4.0  # floor: a very even face must not give a needle-thin model
        inv = np.linalg.inv(cov)
        d = lab[..., 1:] - mu
        maha = np.sqrt(np.einsum("...i,ij,...j->...", d, inv, d))
        chroma_ok = np.clip(3.2 - maha, 0.0, 1.0)
        lo, hi = np.percentile(pts[:, 0], [5, 99])
        L = lab[..., 0]
        light_ok = np.clip((L - (lo - 30.0)) / 8.0, 0, 1) * np.clip(((hi + 15.0) - L) / 8.0, 0, 1)
        out = np.maximum(out, chroma_ok * light_ok)
    if used == 0:
        out = _generic_skin(image)
    # The face's own skin region is skin whatever its shading (nose highlights, cheek shadows).
    for face in faces:
        if face.landmarks is not None and len(face.landmarks) >= 468:
            region = np.zeros((h, w), np.uint8)
            cv2.fillPoly(region, [np.round(face.landmarks[list(FACE_OVAL)]).astype(np.int32)], 1)
            holes = np.zeros((h, w), np.uint8)
            for idx in (LEFT_EYE, RIGHT_EYE, LIPS_OUTER):
                cv2.fillPoly(holes, [np.round(face.landmarks[list(idx)]).astype(np.int32)], 1)
            out = np.maximum(out, (region & (1 - holes)).astype(np.float32) * np.maximum(out, 0.85))
    # Only on the person (slightly grown so hands at the mask edge count).
    grow = max(3, int(max(h, w) / 150))
    near_person = cv2.dilate((person > 0.3).astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)).astype(np.float32)
    out *= near_person
    guide = image.astype(np.float32) / 255.0
    out = cv2.ximgproc.guidedFilter(guide, out.astype(np.float32), max(2, int(max(h, w) / 300)), 1e-2)
    out = remove_small_blobs(np.clip(out, 0, 1), 0.0003)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
