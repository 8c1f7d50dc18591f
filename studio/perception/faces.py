"""Face detection and landmarks behind a small registry of backends.

- `mediapipe` (default; models bundled in the mediapipe 0.10.21 wheel): BlazeFace full-range and
  short-range detectors on the whole image, plus the full-range detector on overlapping tiles (small faces
  in group photos and crowds), merged by non-maximum suppression. A weak detection must be confirmed by a
  second run (the other detector or an overlapping tile). Then a 478-point face mesh (with irises) on a
  256 px crop around each face (the largest first, up to `max_faces`), mapped back to image pixels. Every
  face is returned, not only the largest.
- `insightface`: SCRFD detection + 106-point landmarks from the `buffalo_l` model pack when it is present
  under `perception.insightface_root`; a clear `FaceModelMissing` error names the folder otherwise. Its
  landmarks are the 106-point layout, so the mesh index constants below do not apply to them.

    backend = get_face_backend("mediapipe", cfg.perception)
    faces = backend.detect(image_rgb_uint8)

Landmark index constants below are plain tuples (importing them does not import mediapipe), ordered so
that `cv2.polylines(img, [lm[list(LEFT_EYE)].astype(np.int32)], True, ...)` draws the closed contour.
"LEFT" is the person's left, which is on the image's right for a frontal (unmirrored) photo. Eye contours
start at the inner corner and run along the upper lid to the outer corner, then back along the lower lid.
Brows: lower edge outer→inner, then upper edge inner→outer. Irises: the centre first, then the 4-point
ring (draw `IRIS[1:]`). NOSE is an open polyline, bridge to tip to the base.
"""
from __future__ import annotations

import copy
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

import cv2
import numpy as np

from ..config import PerceptionConfig
from ..types import Box, Face

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LEFT_EYE = (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382)
RIGHT_EYE = (133, 173, 157, 158, 159, 160, 161, 246, 33, 7, 163, 144, 145, 153, 154, 155)
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)  # lower edge out→in, then upper edge in→out
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2)  # bridge to tip to base
NOSE_BOTTOM = (98, 97, 2, 326, 327)  # along the base of the nose
LEFT_IRIS = (473, 474, 475, 476, 477)  # centre first
RIGHT_IRIS = (468, 469, 470, 471, 472)


class FaceModelMissing(RuntimeError):
    """A face backend's model files are not installed; the message says which and how to get them."""


class FaceBackend(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        ...


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous RGB uint8 (H, W, 3) array (mediapipe refuses views); ValueError otherwise."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got {got}; load files with "
                         "studio.io.load_image")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image has no pixels: {image.shape}")
    return np.ascontiguousarray(image)


# mediapipe's C++ side logs through absl before absl::InitializeLog, straight to stderr: a line per model
# when a graph first runs. Only these known start-up lines are dropped; everything else passes through.
_MP_CHATTER = re.compile(r"inference_feedback_manager\.cc|landmark_projection_calculator\.cc|"
                         r"Created TensorFlow Lite XNNPACK delegate|before absl::InitializeLog\(\) is called")


def _quiet_mediapipe() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 and write back every line except mediapipe's start-up chatter."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except ValueError:
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode("utf-8", "replace").splitlines(True) if not _MP_CHATTER.search(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class QuietSolution:
    """A mediapipe solution whose start-up log lines are filtered until `settled(result)` first holds
    (default: after the first call); later calls run untouched, so their errors are never hidden."""

    def __init__(self, make: Callable[[], object], settled: Optional[Callable[[object], bool]] = None):
        _quiet_mediapipe()
        with _filtered_stderr():
            self._solution = make()
            # The graph opens its models on worker threads; a first run waits for them, so their log
            # lines land inside the filter rather than at some later moment.
            self._solution.process(np.zeros((64, 64, 3), np.uint8))
        self._settled = settled or (lambda result: True)
        self._quiet = True

    def process(self, image: np.ndarray):
        if not self._quiet:
            return self._solution.process(image)
        with _filtered_stderr():
            result = self._solution.process(image)
        self._quiet = not self._settled(result)
        return result


NMS_IOU = 0.35  # boxes overlapping more than this are one face (`nms`, `_largest_face`)


def nms(faces: list[Face], iou: float = NMS_IOU) -> list[Face]:
    """Keep the best-scoring face among overlapping ones; also drops a box mostly inside a kept one."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: f.score, reverse=True):
        ok = True
        for k in kept:
            inter = Box(max(f.box.x0, k.box.x0), max(f.box.y0, k.box.y0),
                        min(f.box.x1, k.box.x1), min(f.box.y1, k.box.y1))
            if f.box.iou(k.box) > iou or inter.area > 0.6 * min(f.box.area, k.box.area):
                ok = False
                break
        if ok:
            kept.append(f)
    return kept


def _largest_face(found: list[Face]) -> float:
    """The side of the largest face among a photo's raw detections: each face (`nms`) by the score-weighted mean side
    of the boxes that overlap its best one. The detectors' boxes of one face differ in size by 10-20 % and which is
    largest or best changes under a pixel's shift; the fine tiles hang on this size (`_tile_sizes`), and the
    audience's border face and the group's came and went with them."""
    sides = []
    for k in nms(found):
        near = [f for f in found if f.box.iou(k.box) > NMS_IOU] or [k]
        weights = np.array([f.score for f in near])
        sides.append(float(np.dot(weights, [min(f.box.width, f.box.height) for f in near]) / weights.sum()))
    return max(sides, default=0.0)


# (shift in mesh pixels, zoom) of the crops a large face is meshed on (MediapipeFaces._mesh_for), averaged: against
# one plain crop, the jitter of the points under a grey level of noise went from 0.69 to 0.14 px on a 253-px face
# (0.13 to 0.13, 0.06 to 0.03 on others; under a one-pixel shift 0.56 -> 0.27, 0.38 -> 0.28), for 3 more mesh runs
# (~7 ms each) per face that large.
PLAIN_FRAMING = (((0.0, 0.0), 1.0),)
MESH_FRAMINGS = (((-3.0, -3.0), 0.96), ((3.0, 3.0), 1.04), ((-3.0, 3.0), 1.04), ((3.0, -3.0), 0.96))
# A framing's mesh further than this share of the face's size from the framings' median (the mean over its points) is
# left out of the average: in the dim restaurant one of the right-hand man's four crops meshed the woman beside him, 37
# px away, and the averaged mesh put his eyes' and mouth's strokes on his cheek (the agreeing framings lie within 1 %).
# Where none lies that near, the one nearest the median is kept.
MESH_AGREE = 0.05
# A detector's box side is about this many times the root mean square distance of the face's 468 mesh points from
# their centroid (median 3.3 over the faces of 8 shared photos at 512 px, 3.1-3.6 but for the largest).
MESH_BOX_RATIO = 3.3
# A framing of that second pass further than this share of the face's size from the first mesh (the mean over its
# points) is left out: in the dim restaurant the crops framed by the right-hand man's mesh meshed the woman beside him.
MESH_AGAIN = 0.1


def mesh_framing(points: np.ndarray) -> tuple[tuple[float, float], float]:
    """((x, y), side) of the square a face's mesh frames: its 468 points' centroid, and MESH_BOX_RATIO times their
    root mean square distance from it. Smooth in the points: it moves with the face, not with a detector's box, whose
    place and size change by a pixel or more under a grey level of noise or a pixel's shift (the studio meshes a face
    again on this framing, MediapipeFaces._mesh_for; the mesh's points under a shift 0.13 -> 0.05 px, median)."""
    p = points[:468, :2].astype(np.float64)
    c = p.mean(axis=0)
    r = float(np.sqrt(((p - c) ** 2).sum(axis=1).mean()))
    return (float(c[0]), float(c[1])), MESH_BOX_RATIO * r


class MediapipeFaces:
    """BlazeFace detection (full + short range, tiled) and a 478-point mesh per face."""

    name = "mediapipe"
    MESH_SIDE = 256
    # Faces this large (crop side, px; ~21 px faces) are meshed on MESH_FRAMINGS crops and averaged. At 80 (faces of
    # 42 px) the small faces of groups kept one crop, and their strokes moved with it: the night group's and the
    # dancers' teacher under noise 37.9 / 42.9 -> 38.8 / 44.0 dB at 40 (the elderly seven's < 42 px faces' points
    # 0.12 -> 0.08 px under a grey level of noise), for ~12 ms a face in the studio (the stream keeps one crop).
    MESH_STEADY_PX = 40
    # Faces this large (box side, px) are meshed again on their first mesh's framing (_mesh_for): a crowd's smaller
    # faces' points move by hundredths of a pixel, and a second pass over all its 52 faces cost 0.9 s of perception
    # (1.8 -> 2.7 s at 1024 px; from 36 px 0.3 s).
    MESH_AGAIN_PX = 36
    MESHLESS_MIN_SCORE = 0.8  # a detection on which no mesh fits must be this sure (profiles, tiny faces)
    SINGLE_MIN_SCORE = 0.75  # a detection no other run confirms must be this sure
    CROWD_MIN_FACES = 8  # sure faces (SINGLE_MIN_SCORE, after NMS) before a photo counts as a crowd
    CROWD_TILE_FACES = 5.0  # the crowd tile's side in small-face sizes

    def __init__(self, cfg: PerceptionConfig):
        _quiet_mediapipe()
        import mediapipe as mp

        self.cfg = cfg
        self._lock = threading.Lock()
        thr = max(0.2, min(cfg.min_face_score, 0.9))
        fd = mp.solutions.face_detection
        self._full = QuietSolution(lambda: fd.FaceDetection(model_selection=1, min_detection_confidence=thr))
        self._short = QuietSolution(lambda: fd.FaceDetection(model_selection=0, min_detection_confidence=thr))
        self._mesh = QuietSolution(
            lambda: mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                                    min_detection_confidence=0.3),
            settled=lambda r: r.multi_face_landmarks is not None)  # its last start-up line comes with a face

    def _run_detector(self, det, image: np.ndarray, ox: float, oy: float) -> list[Face]:
        h, w = image.shape[:2]
        res = det.process(image)
        out = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = Box(ox + bb.xmin * w, oy + bb.ymin * h, ox + (bb.xmin + bb.width) * w, oy + (bb.ymin + bb.height) * h)
            kps = np.array([[ox + k.x * w, oy + k.y * h] for k in d.location_data.relative_keypoints], np.float32)
            out.append(Face(box=box, score=float(d.score[0]), keypoints=kps, backend=self.name))
        return out

    def _tile_sizes(self, h: int, w: int, largest: float) -> list[int]:
        # BlazeFace sees a 192 px (full range) or 128 px (short range) square, so faces under ~5% of the
        # photo vanish at full view. Coarse tiles for wide photos; fine tiles (about a quarter to a half of
        # the short side) for groups and crowds, skipped when one face dominates: in a portrait they only
        # find faces in clothing and hair.
        side, long = min(h, w), max(h, w)
        sizes = set()
        if long > 1.4 * side or side > 400:
            sizes.add(min(side, int(max(192, 0.6 * long))))
        if largest < 0.25 * side:
            sizes.add(max(320, side // 4) if side >= 700 else max(128, side // 2))
        return sorted(sizes)

    def _tiled(self, image: np.ndarray, tile: int) -> list[Face]:
        h, w = image.shape[:2]
        step = max(1, int(tile * 0.66))
        found = []
        for y in range(0, max(1, h - tile + step), step):
            for x in range(0, max(1, w - tile + step), step):
                y0, x0 = max(0, min(y, h - tile)), max(0, min(x, w - tile))
                crop = np.ascontiguousarray(image[y0:y0 + tile, x0:x0 + tile])
                found += self._run_detector(self._full, crop, x0, y0)
        return found

    def _crowd_tile(self, found: list[Face], sizes: list[int]) -> tuple[int, float]:
        """A finer tile for a crowd, and the least face side it looks for. Where many faces are small even for the
        finest tile, faces of their size that the detector missed (it needs a face of about a sixth of its square:
        a 37-px face with glasses on a 287-px tile) are looked for again on tiles CROWD_TILE_FACES times that size.
        Fainter, smaller faces further back are left to the background. (0, 0) where the photo is not a crowd."""
        sure = nms([f for f in found if f.score >= self.SINGLE_MIN_SCORE])
        small = sorted(min(f.box.width, f.box.height) for f in sure)
        if not sizes or len(small) < self.CROWD_MIN_FACES:
            return 0, 0.0
        face = small[len(small) // 4]  # the crowd's smaller faces, whatever one odd detection says
        tile = int(max(128, self.CROWD_TILE_FACES * face))
        return (tile, 0.75 * face) if tile < 0.7 * min(sizes) else (0, 0.0)

    def _detect_boxes(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        found = self._run_detector(self._full, image, 0, 0) + self._run_detector(self._short, image, 0, 0)
        largest = _largest_face(found)
        sizes = self._tile_sizes(h, w, largest)
        for tile in sizes:
            found += self._tiled(image, tile)
        tile, least = self._crowd_tile(found, sizes)
        if tile:
            found += [f for f in self._tiled(image, tile) if min(f.box.width, f.box.height) >= least]
        faces = [Face(box=f.box.clip(w, h), score=f.score, keypoints=f.keypoints, backend=f.backend) for f in found
                 if f.score >= self.cfg.min_face_score and min(f.box.width, f.box.height) >= self.cfg.min_face_px]
        kept = nms(faces)
        # A face is seen by both detectors and by overlapping tiles; a weak detection that nothing else
        # confirms is most often a pattern (a road sign, a torso, foliage).
        votes = [sum(k.box.iou(f.box) > 0.3 for f in faces) for k in kept]
        return [k for k, v in zip(kept, votes) if v >= 2 or k.score >= self.SINGLE_MIN_SCORE]

    def _mesh_for(self, image: np.ndarray, face: Face) -> Optional[np.ndarray]:
        """The face's mesh, from a square crop around its box. The crop is resampled at the box's exact position
        (sub-pixel), and a face of MESH_STEADY_PX or more is meshed on MESH_FRAMINGS crops (shifted a few pixels,
        zoomed a few percent) whose points are averaged: the mesh answers a change of framing by ~1 px, and a grey
        level of noise moves the detector's box by about that, so one crop's strokes jittered (issue 14). In the
        studio (`steady`) a face of MESH_AGAIN_PX or more is then meshed again on crops framed by that mesh
        (`mesh_framing`), which follows the face where the detector's box jitters, and the two meshes are averaged."""
        size = max(face.box.width, face.box.height)
        steady = self.cfg.steady and 1.9 * size >= self.MESH_STEADY_PX
        pts = self._mesh_on(image, *face.box.center, 0.95 * size, face, steady)
        if pts is not None and steady and size >= self.MESH_AGAIN_PX:
            (mx, my), side = mesh_framing(pts)
            again = self._mesh_on(image, mx, my, 0.95 * side, face, steady, reference=pts)
            if again is not None:
                pts = ((pts + again) * 0.5).astype(np.float32)
        return pts

    def _mesh_on(self, image: np.ndarray, cx: float, cy: float, half: float, face: Face, steady: bool,
                 reference: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """The mesh of the face `face` on a crop of half side `half` centred at (cx, cy): on MESH_FRAMINGS crops
        averaged where `steady`, else on one; None where none fits or the mesh is not this face's. With `reference`
        (the face's mesh from another framing) only the framings within MESH_AGAIN of it are averaged (None where
        none is): a crop framed by a face's mesh holds its neighbours too, and may mesh one of them."""
        h, w = image.shape[:2]
        if 2 * half < 8:
            return None
        k = self.MESH_SIDE / (2 * half)
        # The region every framing can see, padded by replication so faces at the border get centred crops too.
        m = int(np.ceil(1.2 * half)) + 2
        x0, y0 = int(np.floor(cx)) - m, int(np.floor(cy)) - m
        pad = max(0, -x0, -y0, x0 + 2 * m - w, y0 + 2 * m - h)
        src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
        roi = src[y0 + pad:y0 + pad + 2 * m, x0 + pad:x0 + pad + 2 * m]
        if k < 1:  # brought down: blurred first, as an area resize would average
            roi = cv2.GaussianBlur(roi, (0, 0), 0.5 / k)
        framings = MESH_FRAMINGS if steady else PLAIN_FRAMING
        c = self.MESH_SIDE / 2.0
        found = []
        for (ox, oy), zoom in framings:
            kk = k * zoom
            M = np.float32([[kk, 0, c + ox - kk * (cx - x0)], [0, kk, c + oy - kk * (cy - y0)]])
            crop = cv2.warpAffine(roi, M, (self.MESH_SIDE, self.MESH_SIDE), borderMode=cv2.BORDER_REPLICATE,
                                  flags=cv2.INTER_LINEAR if k < 1 else cv2.INTER_CUBIC)
            res = self._mesh.process(np.ascontiguousarray(crop))
            if not res.multi_face_landmarks:
                continue
            lm = res.multi_face_landmarks[0].landmark
            pts = np.array([[p.x * self.MESH_SIDE, p.y * self.MESH_SIDE] for p in lm], np.float32)
            found.append((pts - np.float32([c + ox, c + oy])) / kk + np.float32([cx, cy]))
        if reference is not None:
            size = max(face.box.width, face.box.height)
            found = [p for p in found if float(np.abs(p - reference).mean()) <= MESH_AGAIN * size]
        if not found:
            return None
        if len(found) > 2:  # a framing that meshed another face in its crop (a neighbour's) is not averaged in
            dev = np.abs(np.stack(found) - np.median(found, axis=0)).mean(axis=(1, 2))
            agree = dev <= max(MESH_AGREE * max(face.box.width, face.box.height), float(dev.min()))  # the nearest one
            found = [p for p, a in zip(found, agree) if a]
        pts = np.mean(found, axis=0).astype(np.float32)
        # The mesh must belong to this face: its centre inside the detector's box, its size comparable.
        oval = pts[list(FACE_OVAL)]
        mc = oval.mean(axis=0)
        bw, bh = face.box.width, face.box.height
        if not (face.box.x0 - 0.2 * bw <= mc[0] <= face.box.x1 + 0.2 * bw and
                face.box.y0 - 0.2 * bh <= mc[1] <= face.box.y1 + 0.3 * bh):
            return None
        if not 0.4 * bw <= float(np.ptp(oval[:, 0])) <= 2.5 * bw:
            return None
        return pts

    def detect(self, image: np.ndarray) -> list[Face]:
        image = check_image(image)
        with self._lock:
            faces = sorted(self._detect_boxes(image), key=lambda f: f.box.area, reverse=True)
            out = []
            for i, f in enumerate(faces):
                if i >= self.cfg.max_faces:  # beyond the mesh budget: boxes only
                    out.append(f)
                    continue
                lm = self._mesh_for(image, f)
                # A weak detection on which no face mesh fits is most often texture (foliage, fur), not a face.
                if lm is None and f.score < self.MESHLESS_MIN_SCORE:
                    continue
                out.append(f.with_landmarks(lm))
            return out


class InsightFaces:
    """insightface FaceAnalysis (SCRFD + 2d106 landmarks) from a local model pack.

    Only the missing-model path is tested here: the model pack cannot be downloaded on the test machines.
    `landmarks` are insightface's 106 points (not the mediapipe mesh layout); `keypoints` its 5 points.
    """

    name = "insightface"

    def __init__(self, cfg: PerceptionConfig):
        self.cfg = cfg
        root = Path(os.path.expanduser(cfg.insightface_root))
        folder = root / "models" / cfg.insightface_model
        how = (f"Download {cfg.insightface_model}.zip from the insightface model zoo "
               f"(github.com/deepinsight/insightface, python-package model_zoo) and unzip it into {folder}, or set "
               "perception.insightface_root to the folder that holds models/; or use "
               "perception.face_backend=mediapipe (bundled)")
        if not folder.is_dir() or not any(folder.glob("*.onnx")):
            raise FaceModelMissing(f"insightface model pack '{cfg.insightface_model}' not found: "
                                   f"expected .onnx files in {folder}. {how}")
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:
            raise FaceModelMissing(f"the insightface backend needs the insightface and onnxruntime packages "
                                   f"({exc}); install them with `pip install --no-deps insightface==2.1` and "
                                   "`pip install onnxruntime`") from None
        try:
            self._app = FaceAnalysis(name=cfg.insightface_model, root=str(root),
                                     allowed_modules=["detection", "landmark_2d_106"],
                                     providers=["CPUExecutionProvider"])
            self._app.prepare(ctx_id=-1, det_size=(640, 640), det_thresh=cfg.min_face_score)
        except (AssertionError, ConnectionError, OSError) as exc:
            # insightface asserts on an incomplete pack and tries to download a missing one.
            raise FaceModelMissing(f"insightface could not load '{cfg.insightface_model}' from {folder} "
                                   f"({type(exc).__name__}: {exc}). {how}") from None
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        image = check_image(image)
        with self._lock:
            found = self._app.get(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        h, w = image.shape[:2]
        out = []
        for f in sorted(found, key=lambda f: -(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])):
            box = Box(*map(float, f.bbox[:4])).clip(w, h)
            if min(box.width, box.height) < self.cfg.min_face_px or float(f.det_score) < self.cfg.min_face_score:
                continue
            kps = getattr(f, "kps", None)
            pts = getattr(f, "landmark_2d_106", None)
            pts = kps if pts is None else pts  # the 5 keypoints when the landmark model did not run
            out.append(Face(box=box, score=float(f.det_score),
                            keypoints=None if kps is None else np.asarray(kps, np.float32),
                            landmarks=None if pts is None else np.asarray(pts, np.float32), backend=self.name))
        return out


FACE_BACKENDS: dict[str, type] = {"mediapipe": MediapipeFaces, "insightface": InsightFaces}
_CACHE: dict[tuple, FaceBackend] = {}
_CACHE_LOCK = threading.Lock()


def get_face_backend(name: str, cfg: PerceptionConfig) -> FaceBackend:
    """The named backend, created once per configuration; unknown names list the choices."""
    if name not in FACE_BACKENDS:
        raise ValueError(f"unknown face backend {name!r}; choices: {sorted(FACE_BACKENDS)}")
    key = (name, cfg)
    with _CACHE_LOCK:
        if key not in _CACHE:
            # `steady` changes how the models are run, not which: a backend that differs from a loaded one only there
            # shares its models and the lock around them (the stream's one-crop backend beside the studio's steady one
            # loaded every model twice: 51 MB and 0.16 s more).
            twin = _CACHE.get((name, replace(cfg, steady=not cfg.steady)))
            if twin is None:
                _CACHE[key] = FACE_BACKENDS[name](cfg)
            else:
                _CACHE[key] = copy.copy(twin)
                _CACHE[key].cfg = cfg
        return _CACHE[key]
