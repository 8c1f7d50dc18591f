"""Face detection and landmarks behind a small registry of backends.

- `mediapipe` (default; models bundled in the mediapipe 0.10.21 wheel): BlazeFace full-range and
  short-range detectors, on the whole image and on overlapping tiles (small faces in group photos),
  merged by non-maximum suppression; then a 478-point face mesh (with irises) on a crop around each face,
  mapped back to image pixels. Every face is returned, not only the largest.
- `insightface`: SCRFD detection + 106-point landmarks from the `buffalo_l` model pack when it is present
  under `perception.insightface_root`; a clear `FaceModelMissing` error names the folder otherwise. (The
  positive path needs the model pack, which cannot be downloaded here, so only the error path is tested.)

    backend = get_face_backend("mediapipe", cfg.perception)
    faces = backend.detect(image_rgb_uint8)

Landmark index constants below are plain tuples (importing them does not import mediapipe). "LEFT" is the
person's left, which is on the image's right for a frontal face. Eye contours start at the inner corner
and run along the upper lid to the outer corner, then back along the lower lid.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional, Protocol

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
LEFT_IRIS = (473, 474, 475, 476, 477)  # centre first
RIGHT_IRIS = (468, 469, 470, 471, 472)


class FaceModelMissing(RuntimeError):
    """A face backend's model files are not installed; the message says which and how to get them."""


class FaceBackend(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        ...


def _quiet_mediapipe() -> None:
    # mediapipe's C++ logging (glog/absl) prints on every graph start; keep warnings and errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def nms(faces: list[Face], iou: float = 0.35) -> list[Face]:
    """Keep the best-scoring face among overlapping ones; also drops a box mostly inside a kept one."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: f.score, reverse=True):
        ok = True
        for k in kept:
            inter = Box(max(f.box.x0, k.box.x0), max(f.box.y0, k.box.y0), min(f.box.x1, k.box.x1), min(f.box.y1, k.box.y1))
            if f.box.iou(k.box) > iou or inter.area > 0.6 * min(f.box.area, k.box.area):
                ok = False
                break
        if ok:
            kept.append(f)
    return kept


class MediapipeFaces:
    """BlazeFace detection (full + short range, tiled) and a 478-point mesh per face."""

    name = "mediapipe"
    MESH_SIDE = 256
    MESHLESS_MIN_SCORE = 0.8
    SINGLE_MIN_SCORE = 0.75

    def __init__(self, cfg: PerceptionConfig):
        _quiet_mediapipe()
        import mediapipe as mp

        self.cfg = cfg
        self._lock = threading.Lock()
        thr = max(0.2, min(cfg.min_face_score, 0.9))
        self._full = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=thr)
        self._short = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=thr)
        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                                     min_detection_confidence=0.3)

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

    def _detect_boxes(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        found = self._run_detector(self._full, image, 0, 0) + self._run_detector(self._short, image, 0, 0)
        # Tiles: the detector sees a 192 px square, so small faces in a wide group photo or a crowd vanish
        # at full view. Two tile sizes (about half the short side, and 320 px on large photos).
        side = min(h, w)
        tiles = set()
        if max(h, w) > 1.4 * side or side > 400:
            tiles.add(min(side, int(max(192, 0.6 * max(h, w)))))
        # The fine pass is for crowds and distant groups; in a portrait (one dominant face) it only adds
        # false detections in clothing and hair.
        largest = max((min(f.box.width, f.box.height) for f in found), default=0.0)
        if largest < 0.25 * side:
            tiles.add(320 if side >= 700 else max(128, side // 2))
        for tile in sorted(tiles):
            step = int(tile * 0.66)
            for y in range(0, max(1, h - tile + step), step):
                for x in range(0, max(1, w - tile + step), step):
                    y0, x0 = min(y, h - tile), min(x, w - tile)
                    found += self._run_detector(self._full, np.ascontiguousarray(image[y0:y0 + tile, x0:x0 + tile]), x0, y0)
        faces = [f for f in found if f.score >= self.cfg.min_face_score and min(f.box.width, f.box.height) >= self.cfg.min_face_px]
        kept = nms([Face(box=f.box.clip(w, h), score=f.score, keypoints=f.keypoints, backend=f.backend) for f in faces])
        # A face is seen by both detectors and by overlapping tiles; a weak detection that nothing else
        # confirms is most often a pattern (a road sign, a torso, foliage).
        votes = [sum(k.box.iou(f.box) > 0.3 for f in faces) for k in kept]
        return [k for k, v in zip(kept, votes) if v >= 2 or k.score >= self.SINGLE_MIN_SCORE]

    def _mesh_for(self, image: np.ndarray, face: Face) -> Optional[np.ndarray]:
        h, w = image.shape[:2]
        cx, cy = face.box.center
        half = 0.95 * max(face.box.width, face.box.height)
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        size = int(round(2 * half))
        if size < 8:
            return None
        # Pad by replication so faces at the border still get a centred crop.
        pad = max(0, -x0, -y0, x0 + size - w, y0 + size - h)
        src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
        crop = src[y0 + pad:y0 + pad + size, x0 + pad:x0 + pad + size]
        k = self.MESH_SIDE / size
        crop = cv2.resize(crop, (self.MESH_SIDE, self.MESH_SIDE),
                          interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
        res = self._mesh.process(crop)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        pts = np.array([[p.x * self.MESH_SIDE, p.y * self.MESH_SIDE] for p in lm], np.float32) / k
        pts += np.array([x0, y0], np.float32)
        # The mesh must belong to this face: its centre inside the detector's box.
        mc = pts[list(FACE_OVAL)].mean(axis=0)
        if not (face.box.x0 - 0.2 * face.box.width <= mc[0] <= face.box.x1 + 0.2 * face.box.width and
                face.box.y0 - 0.2 * face.box.height <= mc[1] <= face.box.y1 + 0.3 * face.box.height):
            return None
        return pts

    def detect(self, image: np.ndarray) -> list[Face]:
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
    """insightface FaceAnalysis (SCRFD + 2d106 landmarks) from a local model pack."""

    name = "insightface"

    def __init__(self, cfg: PerceptionConfig):
        self.cfg = cfg
        root = Path(os.path.expanduser(cfg.insightface_root))
        folder = root / "models" / cfg.insightface_model
        if not folder.is_dir() or not any(folder.glob("*.onnx")):
            raise FaceModelMissing(
                f"insightface model pack '{cfg.insightface_model}' not found: expected .onnx files in {folder}. "
                f"Download {cfg.insightface_model}.zip from the insightface model zoo and unzip it there, or set "
                "perception.insightface_root; or use perception.face_backend=mediapipe (bundled)")
        try:
            from insightface.app import FaceAnalysis

            self._app = FaceAnalysis(name=cfg.insightface_model, root=str(root),
                                     allowed_modules=["detection", "landmark_2d_106"],
                                     providers=["CPUExecutionProvider"])
            self._app.prepare(ctx_id=-1, det_size=(640, 640), det_thresh=cfg.min_face_score)
        except (AssertionError, ConnectionError, OSError) as exc:
            raise FaceModelMissing(f"insightface could not load '{cfg.insightface_model}' from {folder}: "
                                   f"{type(exc).__name__}: {exc}") from None
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        with self._lock:
            found = self._app.get(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        out = []
        for f in sorted(found, key=lambda f: -(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])):
            box = Box(*map(float, f.bbox[:4]))
            if min(box.width, box.height) < self.cfg.min_face_px:
                continue
            lm = getattr(f, "landmark_2d_106", None)
            out.append(Face(box=box, score=float(f.det_score), keypoints=np.asarray(f.kps, np.float32),
                            landmarks=None if lm is None else np.asarray(lm, np.float32), backend=self.name))
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
            _CACHE[key] = FACE_BACKENDS[name](cfg)
        return _CACHE[key]
