"""Person segmentation and pose, from the models bundled in mediapipe 0.10.21 (hair: studio.perception.hair).

- `segment_person`: mediapipe selfie segmentation, general model (model_selection=0; on the full-body and
  group photos here the landscape model was no better, and the general one kept more of the dancers'
  limbs). Its input is the photo padded only as much as needed to keep the aspect ratio under 1.5 (not
  to a square), so people stay large in its 256 px view.
  People the whole-image pass misses (small or dim, found by their faces) get a second pass on a crop
  around them. The soft low-resolution output is refined with a guided filter (the photo as guide, at
  most 800 px) so the edge follows hair and silhouettes, then resized to the photo; tiny blobs are dropped.
- `estimate_pose`: mediapipe Pose, model complexity 1 (the only one bundled; 0 and 2 download models).

    person = segment_person(image_rgb_uint8, faces, steady=True)
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

import cv2
import numpy as np

from ..color import smoothstep
from ..types import Face, Mask
from .faces import QuietSolution, check_image

_LOCK = threading.Lock()  # mediapipe graphs are not thread-safe: one call at a time
_MODELS: dict[str, QuietSolution] = {}
WORK_SIDE = 800  # masks are computed at most this large, then resized to the photo
MAX_ASPECT = 1.5  # the segmenter's input is padded to at most this aspect ratio
BLOB_SUPPORT = 0.25  # remove_small_blobs: a blob is a connected part of the mask above this
MAX_RESCUES = 24  # people the whole-image pass missed, segmented again on a crop around their face (~4 ms each)


def _model(name: str) -> QuietSolution:
    if name not in _MODELS:
        import mediapipe as mp

        if name == "selfie":
            _MODELS[name] = QuietSolution(
                lambda: mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0))
        elif name == "pose":
            _MODELS[name] = QuietSolution(lambda: mp.solutions.pose.Pose(
                static_image_mode=True, model_complexity=1, enable_segmentation=False, min_detection_confidence=0.5))
        else:
            raise KeyError(name)
    return _MODELS[name]


def remove_small_blobs(mask: np.ndarray, min_frac: float) -> np.ndarray:
    """Fade out the connected parts of a soft mask smaller than `min_frac` of the image, smoothly in the mask (issue
    14): a part is what lies above BLOB_SUPPORT, its size its mass (the sum of its values), and it is kept by a
    smoothstep of that mass from 0.5 to 1.5 times `min_frac` of the image, over the pixels from BLOB_SUPPORT to 0.5
    (weaker ones are left as they are). Cutting each part over 0.5 by its count of pixels over 0.5 took away or left
    whole blobs for a grey level of noise: the crowd's skin in the audience photo changed by up to 0.8 there."""
    support = (mask > BLOB_SUPPORT).astype(np.uint8)
    n, labels = cv2.connectedComponents(support, connectivity=8)
    if n <= 1:
        return mask
    mass = np.bincount(labels.ravel(), weights=mask.ravel(), minlength=n)
    full = min_frac * mask.size
    keep = smoothstep(0.5 * full, 1.5 * full, mass)
    keep[0] = 1.0
    if keep.min() >= 1.0:
        return mask
    cut = (1.0 - keep)[labels]
    return (mask * (1.0 - cut * smoothstep(BLOB_SUPPORT, 0.5, mask))).astype(mask.dtype)


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


# Phases of the segmenter's 256-px grid (in its pixels) a steady mask is averaged over: its answer to a one-pixel shift
# of the photo is as large as to its content, so one phase's silhouette moved by a pixel or two and the outline drawn
# along it with it (issue 14). A photo shifted by one pixel at 512 px moves the segmenter's view by half of its pixel:
# a set of phases spread over two of its pixels is nearly the same set after the shift (one four-phase diagonal over
# one pixel halved the raw mask's change; this 4 x 4 grid over two pixels, 16 runs of ~4 ms at 256 px, took the
# teacher's median under a shift from 33.0 to 34.3 dB over the stability set; docs/PERFORMANCE.md).
STEADY_PHASES = tuple((x, y) for y in (0.0, 0.5, 1.0, 1.5) for x in (0.0, 0.5, 1.0, 1.5))
SEGMENTER_SIDE = 256


def _selfie(image: np.ndarray, phases: Sequence[tuple[float, float]] = ((0.0, 0.0),)) -> np.ndarray:
    """The segmenter's soft mask for `image`, resized to it; averaged over `phases` (offsets in the segmenter's
    pixels the image is moved by before it is seen, and the answer moved back)."""
    h, w = image.shape[:2]
    padded, top, left = _pad_aspect(image, MAX_ASPECT)
    ph, pw = padded.shape[:2]
    acc = np.zeros((ph, pw), np.float32)
    for ox, oy in phases:
        dx, dy = ox * pw / SEGMENTER_SIDE, oy * ph / SEGMENTER_SIDE
        seen = padded
        if dx or dy:
            seen = cv2.warpAffine(padded, np.float32([[1, 0, dx], [0, 1, dy]]), (pw, ph), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        with _LOCK:
            raw = _model("selfie").process(np.ascontiguousarray(seen)).segmentation_mask
        raw = cv2.resize(raw.astype(np.float32), (pw, ph), interpolation=cv2.INTER_LINEAR)
        if dx or dy:
            raw = cv2.warpAffine(raw, np.float32([[1, 0, -dx], [0, 1, -dy]]), (pw, ph), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        acc += raw
    acc /= len(phases)
    return acc[top:top + h, left:left + w]


def segment_person(image: np.ndarray, faces: Optional[Sequence[Face]] = None, steady: bool = False,
                   refine_side: int = WORK_SIDE) -> Mask:
    """Soft person mask (H, W) float32 in [0, 1]. `faces` (optional) lets people that the whole-image pass
    misses be segmented again on a crop around them. `steady` averages the whole-image pass over STEADY_PHASES
    (16 runs instead of one, ~60 ms more at 512 px) and refines it twice: the studio's choice; a webcam frame keeps
    one of each. `refine_side`: the long side the guided refinement runs at (the realtime step's silhouette asks for
    320: 12 ms instead of 60 for a 960 px frame, and the same outline to 0.01 dB on the held-out portraits;
    docs/PERFORMANCE.md, "The person's outline")."""
    image = check_image(image)
    h, w = image.shape[:2]
    k = min(1.0, WORK_SIDE / max(h, w))
    work = image
    if k < 1:
        work = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    wh, ww = work.shape[:2]
    raw = _selfie(work, STEADY_PHASES if steady else ((0.0, 0.0),))
    missed = []
    for face in sorted(faces or [], key=lambda f: -f.box.area):
        x0, y0, x1, y1 = (int(round(v * k)) for v in (face.box.x0, face.box.y0, face.box.x1, face.box.y1))
        if x1 - x0 >= 8 and raw[max(0, y0):max(1, y1), max(0, x0):max(1, x1)].mean() <= 0.75:
            missed.append((x0, y0, x1, y1))
    # The budget goes to the people the whole-image pass missed (it went to the 8 largest faces, found or not: in a
    # crowd of 36 faces the 37 px ones it missed were never segmented again, and their faces were painted as
    # background, smoothed away under the background's ink; dlib found 6 of 15 of them again).
    for x0, y0, x1, y1 in missed[:MAX_RESCUES]:
        fw, fh = max(1, x1 - x0), max(1, y1 - y0)
        # Head and upper body, the framing the segmenter was trained on (a selfie); a wider crop with
        # the neighbours in it fails as the whole photo did.
        cx0, cx1 = max(0, x0 - 2 * fw), min(ww, x1 + 2 * fw)
        cy0, cy1 = max(0, y0 - fh), min(wh, y1 + 4 * fh)
        if cx1 - cx0 < 16 or cy1 - cy0 < 16:
            continue
        sub = _selfie(np.ascontiguousarray(work[cy0:cy1, cx0:cx1]))
        raw[cy0:cy1, cx0:cx1] = np.maximum(raw[cy0:cy1, cx0:cx1], sub)
    # Sharpen the soft low-resolution output, then let the photo's own edges place the boundary.
    # A steady mask is refined twice: the first pass moves the segmenter's coarse edge onto the photo's, the second (a
    # smaller eps) holds it there, so the silhouette follows the photo's edges rather than the segmenter's grid (with
    # the phases, the 0.5 level's median displacement under a one-pixel shift 0.23 -> 0.13 px on the four-person
    # group; the teacher's median +0.3 dB under a shift). The stream keeps one pass: 2.7 ms at 960 x 540 for 0.02 dB.
    radius = max(2.0, max(wh, ww) / 160)
    refined = raw
    for eps in ((1e-3, 1e-4) if steady else (1e-3,)):
        hard = np.clip((refined - 0.5) * 4.0 + 0.5, 0.0, 1.0).astype(np.float32)
        refined = guided_refine(work, hard, radius, eps, max_side=refine_side)
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
