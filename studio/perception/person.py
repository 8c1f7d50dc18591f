"""Person segmentation, pose and a hair estimate, from the models bundled in mediapipe 0.10.21.

- `segment_person`: mediapipe selfie segmentation, general model (model_selection=0; on the full-body and
  group photos here the landscape model was no better, and the general one kept more of the dancers'
  limbs). Its input is the photo padded only as much as needed to keep the aspect ratio under 1.5 (not
  to a square), so people stay large in its 256 px view.
  People the whole-image pass misses (small or dim, found by their faces) get a second pass on a crop
  around them. The soft low-resolution output is refined with a guided filter (the photo as guide, at
  most 800 px) so the edge follows hair and silhouettes, then resized to the photo; tiny blobs are dropped.
- `estimate_pose`: mediapipe Pose, model complexity 1 (the only one bundled; 0 and 2 download models).
- `hair_mask`: no hair model ships with mediapipe, so hair is estimated as the person's pixels in
  a head-shaped region around each face whose colour is closer to the hair just above the forehead than
  to the face's skin (no hair when that band is the face's own skin by colour or smoothness: a bald or
  shaved head).

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
            _MODELS[name] = QuietSolution(
                lambda: mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0))
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
    work = image
    if k < 1:
        work = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    wh, ww = work.shape[:2]
    raw = _selfie(work)
    for face in sorted(faces or [], key=lambda f: -f.box.area)[:MAX_RESCUES]:
        x0, y0, x1, y1 = (int(round(v * k)) for v in (face.box.x0, face.box.y0, face.box.x1, face.box.y1))
        fw, fh = max(1, x1 - x0), max(1, y1 - y0)
        if fw < 8 or raw[max(0, y0):max(1, y1), max(0, x0):max(1, x1)].mean() > 0.75:
            continue
        # Head and upper body, the framing the segmenter was trained on (a selfie); a wider crop with
        # the neighbours in it fails as the whole photo did.
        cx0, cx1 = max(0, x0 - 2 * fw), min(ww, x1 + 2 * fw)
        cy0, cy1 = max(0, y0 - fh), min(wh, y1 + 4 * fh)
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


HAIR_FACE_PX = 160  # each head is analysed with its face at most this wide, then resized back


def _head_hair(image: np.ndarray, face: Face, person: np.ndarray) -> Optional[tuple[int, int, np.ndarray]]:
    """(y0, x0, soft hair mask of the head region at (y0, x0)) for one face with a mesh, or None."""
    from .skin import face_skin_roi, to_lab

    h, w = image.shape[:2]
    lm = face.landmarks
    oval = lm[list(FACE_OVAL)]
    cx, cy = (float(v) for v in oval.mean(axis=0))
    fw, fh = float(np.ptp(oval[:, 0])), float(np.ptp(oval[:, 1]))
    # Head region: a tall ellipse around the face reaching above the crown and down past the shoulders
    # (long hair), wider than the face; its bounding box (plus the blur margin) is the work area.
    ex, ey, ax, ay = cx, cy + 0.25 * fh, 1.1 * fw, 1.35 * fh
    sigma = max(1.0, 0.08 * fw)
    margin = int(3 * sigma) + 2
    rx0, rx1 = max(0, int(ex - ax) - margin), min(w, int(ex + ax) + margin + 1)
    ry0, ry1 = max(0, int(ey - ay) - margin), min(h, int(ey + ay) + margin + 1)
    if rx1 - rx0 < 8 or ry1 - ry0 < 8:
        return None
    # Work at a scale where the face is at most HAIR_FACE_PX wide: a soft mask needs no more, and a large
    # face at full size costs ~150 ms.
    k = min(1.0, HAIR_FACE_PX / max(fw, 1.0))
    size = (max(4, int(round((rx1 - rx0) * k))), max(4, int(round((ry1 - ry0) * k))))
    sw, sh = size

    def to_small(pts: np.ndarray) -> np.ndarray:
        return (pts - [rx0, ry0]) * [sw / (rx1 - rx0), sh / (ry1 - ry0)]

    roi_img = np.ascontiguousarray(image[ry0:ry1, rx0:rx1])
    lab = to_lab(cv2.resize(roi_img, size, interpolation=cv2.INTER_AREA) if k < 1 else roi_img)
    pers = person[ry0:ry1, rx0:rx1]
    if k < 1:
        pers = cv2.resize(pers, size, interpolation=cv2.INTER_AREA)
    fws, fhs = fw * k, fh * k
    (scx, scy), = to_small(np.array([[cx, cy]]))
    (sex, sey), = to_small(np.array([[ex, ey]]))
    region = np.zeros((sh, sw), np.float32)
    cv2.ellipse(region, (int(sex), int(sey)), (int(ax * k), int(ay * k)), 0, 0, 360, 1.0, -1)
    # Below the chin, hair falls beside the neck, never across the neck and chest.
    chin = int(to_small(oval)[:, 1].max())
    if chin < sh:
        region[max(0, chin):, max(0, int(scx - 0.55 * fws)):max(0, int(scx + 0.55 * fws))] = 0.0
    region = cv2.GaussianBlur(region, (0, 0), max(0.5, sigma * k))
    # Hair colour sample: a band above the top of the face oval (the hairline), on the person. Not cut by
    # the skin mask: blond and red hair often pass as skin there; the bald-head test catches a band that
    # is really forehead or scalp.
    top = float(to_small(oval)[:, 1].min())
    by0, by1 = max(0, int(top - 0.30 * fhs)), max(0, int(top - 0.06 * fhs))
    bx0, bx1 = max(0, int(scx - 0.3 * fws)), min(sw, int(scx + 0.3 * fws) + 1)
    if by1 <= by0 or bx1 <= bx0:
        return None
    on_person = pers[by0:by1, bx0:bx1] > 0.5
    sample = lab[by0:by1, bx0:bx1][on_person]
    if len(sample) < 12:
        return None
    mu = np.median(sample, axis=0)
    # The face's own skin (cheeks, nose, chin) at the same scale.
    sy, sx, sm = face_skin_roi(image.shape, face)
    skin_small = np.zeros((ry1 - ry0, rx1 - rx0), np.uint8)
    ty0, tx0 = max(sy, ry0), max(sx, rx0)
    ty1, tx1 = min(sy + sm.shape[0], ry1), min(sx + sm.shape[1], rx1)
    if ty1 <= ty0 or tx1 <= tx0:
        return None
    skin_small[ty0 - ry0:ty1 - ry0, tx0 - rx0:tx1 - rx0] = sm[ty0 - sy:ty1 - sy, tx0 - sx:tx1 - sx]
    skin_small = (cv2.resize(skin_small, size, interpolation=cv2.INTER_NEAREST) if k < 1 else skin_small).astype(bool)
    if skin_small.sum() < 12:
        return None
    skin_mu = np.median(lab[skin_small], axis=0)
    # A bald or shaved head: what is above the forehead is the face's own skin, not hair. Either it has
    # the face's colour and no more texture than the face, or (shine and shadow change a scalp's colour) it is
    # as smooth as the face's cheeks or smoother, not much darker, and of a skin-like chroma; hair strands have
    # fine texture. (Blond hair can have a light skin's colour: on group_4faces_diverse_skin_01 it was taken
    # for a scalp by its colour alone, with four times the cheeks' texture, and painted as skin.)
    L = lab[..., 0]
    fine = np.abs(L - cv2.GaussianBlur(L, (0, 0), max(0.7, fws / 60.0)))
    tex_hair = float(np.median(fine[by0:by1, bx0:bx1][on_person]))
    tex_skin = float(np.median(fine[skin_small]))
    smooth = tex_hair < 0.75 * max(tex_skin, 0.05)
    textured = tex_hair > 2.0 * max(tex_skin, 0.05)
    skin_like = mu[0] > skin_mu[0] - 20.0 and float(np.linalg.norm(mu[1:] - skin_mu[1:])) < 15.0
    if (np.linalg.norm(mu - skin_mu) < 10.0 and not textured) or (smooth and skin_like):
        return None
    scale = 2.5 * np.clip(np.percentile(np.abs(sample - mu), 80, axis=0), [8.0, 4.0, 4.0], [18.0, 9.0, 9.0])
    d = np.sqrt((((lab - mu) / scale) ** 2).sum(-1))
    m = region * np.clip(1.5 - d, 0.0, 1.0) * np.clip(pers, 0.0, 1.0)
    # Closer to this face's skin than to its hair is skin (a cheek beside a turned face, a neck), even
    # when the hair colour is near the skin's (blond, red, grey).
    d_skin = np.sqrt((((lab - skin_mu) / scale) ** 2).sum(-1))
    m *= np.clip((d_skin - d) * 2.0 + 0.5, 0.0, 1.0)
    # The face itself is never hair (eyebrows and beards stay with the face): the hull of the whole mesh,
    # which also covers the near cheek of a turned face.
    face_area = np.zeros_like(region)
    cv2.fillConvexPoly(face_area, cv2.convexHull(np.round(to_small(lm[:468])).astype(np.int32)), 1.0)
    m *= 1.0 - face_area
    if k < 1:
        m = cv2.resize(m, (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_LINEAR)
    return ry0, rx0, m.astype(np.float32)


def hair_mask(image: np.ndarray, faces: Sequence[Face], person: np.ndarray, skin: np.ndarray) -> Mask:
    """Soft hair estimate: person ∩ head region ∩ colour closer to the hair above the forehead than to the
    face's skin, minus the face itself. Zero where there is no face with a mesh, and for bald heads.

    `skin` is not used to cut the hair: red and blond hair often pass the skin colour test, so the hair is
    decided against each face's own skin colour here, and the caller removes hair from the skin mask
    (`perceive` does). Each face is handled inside its own head region, so many small faces cost little.
    """
    image = check_image(image)
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    for face in faces:
        if not face.has_mesh or face.box.width < 20:
            continue
        found = _head_hair(image, face, person)
        if found is not None:
            y0, x0, m = found
            np.maximum(out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]], m, out=out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]])
    if out.max() == 0:
        return out
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    out = remove_small_blobs(cv2.GaussianBlur(out, (0, 0), 1.5), 0.0005)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
