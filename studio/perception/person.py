"""Person segmentation, pose and a hair estimate, from the models bundled in mediapipe 0.10.21.

- `segment_person`: mediapipe selfie segmentation (general model) on the image padded to a square, its
  256 px mask refined at full resolution with a guided filter so the edge follows hair and silhouettes.
- `estimate_pose`: mediapipe Pose, model complexity 1 (the only one bundled; 0 and 2 download models).
- `hair_mask`: no hair model ships with mediapipe, so hair is estimated as the person's pixels in
  a head-shaped region around each face, split from the rest by colour similarity to the hair just above
  the forehead (no hair when that colour is the face's own skin: a bald or shaved head).
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

import cv2
import numpy as np

from ..types import Face
from .faces import FACE_OVAL, _quiet_mediapipe

_LOCK = threading.Lock()
_MODELS: dict[str, object] = {}


def _model(name: str):
    if name not in _MODELS:
        _quiet_mediapipe()
        import mediapipe as mp

        if name == "selfie":
            _MODELS[name] = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        elif name == "pose":
            _MODELS[name] = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                   enable_segmentation=False, min_detection_confidence=0.5)
    return _MODELS[name]


def _square(image: np.ndarray) -> tuple[np.ndarray, int, int]:
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    padded = cv2.copyMakeBorder(image, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
    return padded, top, left


def remove_small_blobs(mask: np.ndarray, min_frac: float) -> np.ndarray:
    hard = (mask > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if n <= 1:
        return mask
    small = stats[:, cv2.CC_STAT_AREA] < min_frac * mask.size
    small[0] = False
    out = mask.copy()
    out[small[labels]] = 0.0
    return out


def segment_person(image: np.ndarray) -> np.ndarray:
    """Soft person mask (H, W) float32 in [0, 1]."""
    h, w = image.shape[:2]
    padded, top, left = _square(image)
    work = cv2.resize(padded, (512, 512), interpolation=cv2.INTER_AREA) if padded.shape[0] > 512 else padded
    with _LOCK:
        raw = _model("selfie").process(np.ascontiguousarray(work)).segmentation_mask
    raw = cv2.resize(raw.astype(np.float32), (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)
    raw = raw[top:top + h, left:left + w]
    # Sharpen the soft low-resolution output, then let the photo's own edges place the boundary.
    hard = np.clip((raw - 0.5) * 4.0 + 0.5, 0.0, 1.0).astype(np.float32)
    guide = image.astype(np.float32) / 255.0
    r = max(2, int(round(max(h, w) / 160)))
    refined = cv2.ximgproc.guidedFilter(guide, hard, r, 1e-3)
    refined = np.clip((refined - 0.5) * 1.6 + 0.5, 0.0, 1.0)
    return remove_small_blobs(refined, 0.002).astype(np.float32)


def estimate_pose(image: np.ndarray) -> Optional[np.ndarray]:
    """(33, 3): x, y in pixels and visibility, or None when no body is found."""
    h, w = image.shape[:2]
    with _LOCK:
        res = _model("pose").process(np.ascontiguousarray(image))
    if res.pose_landmarks is None:
        return None
    return np.array([[p.x * w, p.y * h, p.visibility] for p in res.pose_landmarks.landmark], np.float32)


def hair_mask(image: np.ndarray, faces: Sequence[Face], person: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Soft hair estimate: person ∩ head region ∩ colour close to the hair above the forehead, minus the face.

    The hair colour is sampled away from skin, but the mask itself is not cut by the skin mask: red and
    blond hair can have skin-like chroma, so the caller removes hair from the skin mask instead.
    """
    from .skin import face_skin_region

    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    for face in faces:
        lm = face.landmarks
        if lm is None or len(lm) < 468 or face.box.width < 20:
            continue
        oval = lm[list(FACE_OVAL)]
        cx, cy = oval.mean(axis=0)
        fw, fh = np.ptp(oval[:, 0]), np.ptp(oval[:, 1])
        # Head region: a tall ellipse around the face reaching above the crown and down past the shoulders
        # (long hair), wider than the face.
        region = np.zeros((h, w), np.float32)
        cv2.ellipse(region, (int(cx), int(cy + 0.25 * fh)), (int(1.1 * fw), int(1.35 * fh)), 0, 0, 360, 1.0, -1)
        # Below the chin, hair falls beside the neck, never across the neck and chest.
        chin_y = int(oval[:, 1].max())
        if chin_y < h:
            region[chin_y:, int(max(0, cx - 0.55 * fw)):int(min(w, cx + 0.55 * fw))] = 0.0
        region = cv2.GaussianBlur(region, (0, 0), max(1.0, 0.08 * fw))
        # Hair colour sample: a band above the top of the face oval (the hairline), away from skin.
        top = oval[:, 1].min()
        y0, y1 = int(max(0, top - 0.30 * fh)), int(max(0, top - 0.06 * fh))
        x0, x1 = int(max(0, cx - 0.3 * fw)), int(min(w, cx + 0.3 * fw))
        band = lab[y0:y1, x0:x1]
        on_person = person[y0:y1, x0:x1] > 0.5
        sample = band[on_person & (skin[y0:y1, x0:x1] < 0.5)]
        if len(sample) < 20:
            sample = band[on_person]
        if len(sample) < 20:
            continue
        mu = np.median(sample, axis=0)
        # A bald or shaved head: what is above the forehead is the face's own skin, not hair.
        face_px = lab[face_skin_region(image.shape, face)]
        if len(face_px) and np.linalg.norm(mu - np.median(face_px, axis=0)) < 10.0:
            continue
        spread = np.clip(np.percentile(np.abs(sample - mu), 80, axis=0), [8.0, 4.0, 4.0], [18.0, 9.0, 9.0])
        d = np.sqrt((((lab - mu) / (2.5 * spread)) ** 2).sum(-1))
        similar = np.clip(1.5 - d, 0.0, 1.0)
        m = region * similar * np.clip(person, 0, 1)
        # The face itself is never hair (eyebrows and beards stay with the face).
        face_area = np.zeros((h, w), np.float32)
        cv2.fillPoly(face_area, [np.round(oval).astype(np.int32)], 1.0)
        m *= 1.0 - face_area
        out = np.maximum(out, m)
    if out.max() == 0:
        return out
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    out = remove_small_blobs(cv2.GaussianBlur(out, (0, 0), 1.5), 0.0005)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
