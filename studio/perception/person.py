"""Person segmentation, pose and a hair estimate, from the models bundled in mediapipe 0.10.21.

- `segment_person`: mediapipe selfie segmentation, general model (model_selection=0: on the full-body and
  group photos here it kept more of the limbs than the landscape model). Its input is the photo padded
  only as much as needed to keep the aspect ratio under 1.5, so people stay large in its 256 px view.
  People the whole-image pass misses (small or dim, found by their faces) get a second pass on a crop
  around them. The soft low-resolution output is refined with a guided filter (the photo as guide, at
  most 800 px) so the edge follows hair and silhouettes, then resized to the photo; tiny blobs are dropped.
- `estimate_pose`: mediapipe Pose, model complexity 1 (the only one bundled; 0 and 2 download models).
- `hair_mask`: no hair model ships with mediapipe, so hair is estimated as the person's pixels in
  a head-shaped region around each face, split from the rest by colour similarity to the hair just above
  the forehead (no hair when that colour is the face's own skin: a bald or shaved head).

    person = segment_person(image_rgb_uint8, faces)
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

import cv2
import numpy as np

from ..types import Face, Mask
from .faces import FACE_OVAL, QuietSolution, check_image

_LOCK = threading.Lock()  # mediapipe graphs are not thread-safe: one call at a time
_MODELS: dict[str, QuietSolution] = {}
WORK_SIDE = 800  # masks are computed at most this large, then resized to the photo
MAX_ASPECT = 1.5  # the segmenter's input is padded to at most this aspect ratio
MAX_RESCUES = 8  # people segmented again on a crop around their face


def _model(name: str) -> QuietSolution:
    if name not in _MODELS:
        import mediapipe as mp

        if name == "selfie":
            _MODELS[name] = QuietSolution(lambda: mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0))
        elif name == "pose":
            _MODELS[name] = QuietSolution(lambda: mp.solutions.pose.Pose(
                static_image_mode=True, model_complexity=1, enable_segmentation=False, min_detection_confidence=0.5))
        else:
            raise KeyError(name)
    return _MODELS[name]


def remove_small_blobs(mask: np.ndarray, min_frac: float) -> np.ndarray:
    """Zero the connected parts (mask > 0.5) smaller than `min_frac` of the image."""
    hard = (mask > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if n <= 1:
        return mask
    small = stats[:, cv2.CC_STAT_AREA] < min_frac * mask.size
    small[0] = False
    if not small.any():
        return mask
    out = mask.copy()
    out[small[labels]] = 0.0
    return out


def guided_refine(image: np.ndarray, mask: np.ndarray, radius: float, eps: float,
                  max_side: int = WORK_SIDE) -> np.ndarray:
    """Guided filter of `mask` with the photo as colour guide; `radius` in the photo's pixels. Runs at most
    `max_side` px (a 1600 px colour guided filter costs ~150 ms on 2 cores, at 800 px ~40 ms)."""
    h, w = mask.shape[:2]
    k = min(1.0, max_side / max(h, w))
    if k < 1.0:
        size = (max(1, round(w * k)), max(1, round(h * k)))
        guide = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        src = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    else:
        guide, src = image, mask.astype(np.float32)
    out = cv2.ximgproc.guidedFilter(guide.astype(np.float32) / 255.0, src, max(1, int(round(radius * k))), eps)
    if k < 1.0:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def _pad_aspect(image: np.ndarray, max_aspect: float) -> tuple[np.ndarray, int, int]:
    h, w = image.shape[:2]
    H, W = max(h, int(np.ceil(w / max_aspect))), max(w, int(np.ceil(h / max_aspect)))
    top, left = (H - h) // 2, (W - w) // 2
    if (H, W) == (h, w):
        return image, 0, 0
    return cv2.copyMakeBorder(image, top, H - h - top, left, W - w - left, cv2.BORDER_CONSTANT, value=0), top, left


def _selfie(image: np.ndarray) -> np.ndarray:
    """The segmenter's soft mask for `image`, resized to it."""
    h, w = image.shape[:2]
    padded, top, left = _pad_aspect(image, MAX_ASPECT)
    with _LOCK:
        raw = _model("selfie").process(np.ascontiguousarray(padded)).segmentation_mask
    raw = cv2.resize(raw.astype(np.float32), (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)
    return raw[top:top + h, left:left + w]


def segment_person(image: np.ndarray, faces: Optional[Sequence[Face]] = None) -> Mask:
    """Soft person mask (H, W) float32 in [0, 1]. `faces` (optional) lets people that the whole-image pass
    misses be segmented again on a crop around them."""
    image = check_image(image)
    h, w = image.shape[:2]
    k = min(1.0, WORK_SIDE / max(h, w))
    work = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) if k < 1 else image
    wh, ww = work.shape[:2]
    raw = _selfie(work)
    for face in sorted(faces or [], key=lambda f: -f.box.area)[:MAX_RESCUES]:
        x0, y0, x1, y1 = (int(round(v * k)) for v in (face.box.x0, face.box.y0, face.box.x1, face.box.y1))
        fw, fh = max(1, x1 - x0), max(1, y1 - y0)
        if fw < 8 or raw[max(0, y0):max(1, y1), max(0, x0):max(1, x1)].mean() > 0.5:
            continue
        # Head and upper body: the crop the segmenter was trained on (a selfie).
        cx0, cx1 = max(0, x0 - 3 * fw), min(ww, x1 + 3 * fw)
        cy0, cy1 = max(0, y0 - fh), min(wh, y1 + 6 * fh)
        if cx1 - cx0 < 16 or cy1 - cy0 < 16:
            continue
        sub = _selfie(np.ascontiguousarray(work[cy0:cy1, cx0:cx1]))
        raw[cy0:cy1, cx0:cx1] = np.maximum(raw[cy0:cy1, cx0:cx1], sub)
    # Sharpen the soft low-resolution output, then let the photo's own edges place the boundary.
    hard = np.clip((raw - 0.5) * 4.0 + 0.5, 0.0, 1.0).astype(np.float32)
    refined = guided_refine(work, hard, max(2.0, max(wh, ww) / 160), 1e-3)
    refined = remove_small_blobs(np.clip((refined - 0.5) * 1.6 + 0.5, 0.0, 1.0), 0.002)
    if k < 1:
        refined = cv2.resize(refined, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(refined, 0.0, 1.0).astype(np.float32)


def estimate_pose(image: np.ndarray) -> Optional[np.ndarray]:
    """(33, 3): x, y in pixels and visibility, or None when no body is found."""
    image = check_image(image)
    h, w = image.shape[:2]
    with _LOCK:
        res = _model("pose").process(image)
    if res.pose_landmarks is None:
        return None
    return np.array([[p.x * w, p.y * h, p.visibility] for p in res.pose_landmarks.landmark], np.float32)


def hair_mask(image: np.ndarray, faces: Sequence[Face], person: np.ndarray, skin: np.ndarray) -> Mask:
    """Soft hair estimate: person ∩ head region ∩ colour close to the hair above the forehead, minus the face.

    The hair colour is sampled away from skin, but the mask itself is not cut by the skin mask: red and
    blond hair can have skin-like chroma, so the caller removes hair from the skin mask instead.
    Each face is handled inside its own head region, so many small faces cost little.
    """
    from .skin import face_skin_samples, to_lab

    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    for face in faces:
        lm = face.landmarks
        if lm is None or len(lm) < 468 or face.box.width < 20:
            continue
        oval = lm[list(FACE_OVAL)]
        cx, cy = oval.mean(axis=0)
        fw, fh = float(np.ptp(oval[:, 0])), float(np.ptp(oval[:, 1]))
        # Head region: a tall ellipse around the face reaching above the crown and down past the shoulders
        # (long hair), wider than the face; its bounding box (plus the blur margin) is the work area.
        ex, ey, ax, ay = cx, cy + 0.25 * fh, 1.1 * fw, 1.35 * fh
        sigma = max(1.0, 0.08 * fw)
        margin = int(3 * sigma) + 2
        rx0, rx1 = max(0, int(ex - ax) - margin), min(w, int(ex + ax) + margin + 1)
        ry0, ry1 = max(0, int(ey - ay) - margin), min(h, int(ey + ay) + margin + 1)
        if rx1 - rx0 < 4 or ry1 - ry0 < 4:
            continue
        region = np.zeros((ry1 - ry0, rx1 - rx0), np.float32)
        cv2.ellipse(region, (int(ex) - rx0, int(ey) - ry0), (int(ax), int(ay)), 0, 0, 360, 1.0, -1)
        # Below the chin, hair falls beside the neck, never across the neck and chest.
        chin_y = int(oval[:, 1].max()) - ry0
        if chin_y < region.shape[0]:
            region[max(0, chin_y):, max(0, int(cx - 0.55 * fw) - rx0):max(0, int(cx + 0.55 * fw) - rx0)] = 0.0
        region = cv2.GaussianBlur(region, (0, 0), sigma)
        lab = to_lab(image[ry0:ry1, rx0:rx1])
        # Hair colour sample: a band above the top of the face oval (the hairline), away from skin.
        top = float(oval[:, 1].min())
        y0, y1 = int(max(0, top - 0.30 * fh)), int(max(0, top - 0.06 * fh))
        x0, x1 = int(max(0, cx - 0.3 * fw)), int(min(w, cx + 0.3 * fw))
        y0, y1 = max(y0, ry0), min(y1, ry1)
        x0, x1 = max(x0, rx0), min(x1, rx1)
        if y1 <= y0 or x1 <= x0:
            continue
        band = lab[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]
        on_person = person[y0:y1, x0:x1] > 0.5
        sample = band[on_person & (skin[y0:y1, x0:x1] < 0.5)]
        if len(sample) < 20:
            sample = band[on_person]
        if len(sample) < 20:
            continue
        mu = np.median(sample, axis=0)
        # A bald or shaved head: what is above the forehead is the face's own skin, not hair.
        face_px = face_skin_samples(image, face, trim=False)
        if len(face_px) and np.linalg.norm(mu - np.median(face_px, axis=0)) < 10.0:
            continue
        spread = np.clip(np.percentile(np.abs(sample - mu), 80, axis=0), [8.0, 4.0, 4.0], [18.0, 9.0, 9.0])
        d = np.sqrt((((lab - mu) / (2.5 * spread)) ** 2).sum(-1))
        m = region * np.clip(1.5 - d, 0.0, 1.0) * np.clip(person[ry0:ry1, rx0:rx1], 0, 1)
        # The face itself is never hair (eyebrows and beards stay with the face).
        face_area = np.zeros_like(region)
        cv2.fillPoly(face_area, [np.round(oval - [rx0, ry0]).astype(np.int32)], 1.0)
        m *= 1.0 - face_area
        np.maximum(out[ry0:ry1, rx0:rx1], m, out=out[ry0:ry1, rx0:rx1])
    if out.max() == 0:
        return out
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    out = remove_small_blobs(cv2.GaussianBlur(out, (0, 0), 1.5), 0.0005)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
