"""Perception: faces, person mask, skin, hair and pose for a photo. mediapipe is imported on first use
(importing this package does not import it).

    from studio.perception import perceive
    p = perceive(image_rgb_uint8, cfg.perception)
    p.faces, p.person, p.skin, p.skin_tones, p.hair, p.timings
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import cv2
import numpy as np

from ..config import PerceptionConfig
from ..timing import Laps
from ..types import Perception
from .faces import FACE_BACKENDS, FaceBackend, FaceModelMissing, check_image, get_face_backend
from .frame import PhotoFrame, find_frame
from .hair import hair_and_heads, hair_mask
from .person import estimate_pose, segment_person
from .skin import face_skin_samples, skin_mask, skin_tone
from .tracking import CharacterAssignments, FaceTracker, Track

__all__ = ["perceive", "scale_perception", "pad_perception", "find_frame", "PhotoFrame", "FACE_BACKENDS", "FaceBackend",
           "FaceModelMissing", "get_face_backend",
           "segment_person", "estimate_pose", "hair_mask", "skin_mask", "skin_tone", "face_skin_samples",
           "FaceTracker", "Track", "CharacterAssignments"]


def scale_perception(p: Perception, kx: float, ky: float, shape: tuple[int, int]) -> Perception:
    """The same perception for the image resized by (kx, ky) to `shape` (h, w): boxes, points and masks."""
    h, w = shape
    rs = lambda m, how=cv2.INTER_LINEAR: None if m is None else cv2.resize(m, (w, h), interpolation=how)  # noqa: E731
    faces = [f.scaled(kx, ky) for f in p.faces]
    pose = None if p.pose is None else p.pose * np.array([kx, ky, 1.0], np.float32)
    return replace(p, faces=faces, person=rs(p.person), skin=rs(p.skin), hair=rs(p.hair),
                   hair_heads=rs(p.hair_heads, cv2.INTER_NEAREST), pose=pose)


def pad_perception(p: Perception, top: int, left: int, shape: tuple[int, int]) -> Perception:
    """The same perception for its image placed at (`left`, `top`) in an image of `shape` (h, w) (a photo within
    its frame, studio.perception.frame): boxes and points moved, masks padded with nothing (zeros)."""
    h, w = shape

    def pad(m):
        if m is None:
            return None
        out = np.zeros((h, w), m.dtype)
        out[top:top + m.shape[0], left:left + m.shape[1]] = m
        return out

    faces = [f.moved(float(left), float(top)) for f in p.faces]
    pose = None if p.pose is None else p.pose + np.array([left, top, 0.0], np.float32)
    return replace(p, faces=faces, person=pad(p.person), skin=pad(p.skin), hair=pad(p.hair),
                   hair_heads=pad(p.hair_heads), pose=pose)


def perceive(image: np.ndarray, cfg: PerceptionConfig, pose: Optional[bool] = None) -> Perception:
    """Faces, person mask, skin mask, skin tones (one per face, same order), hair and optionally pose.

    `pose=None` follows `cfg.pose`. `timings` holds seconds per stage: faces, person, skin, hair (, pose).
    """
    # 1. Check inputs.
    image = check_image(image)
    laps = Laps()
    lap = laps.lap
    # 2. Faces: every face, largest first.
    faces = get_face_backend(cfg.face_backend, cfg).detect(image)
    lap("faces")
    # 3. Person: the faces also point at people the whole-image segmentation misses.
    person = segment_person(image, faces, steady=cfg.steady)
    lap("person")
    # 4. Skin, seeded by each face's own colour; tones measured on the face skin.
    skin = skin_mask(image, faces, person)
    tones = [skin_tone(image, f) for f in faces]
    lap("skin")
    # 5. Hair, which is then taken out of the skin (red and blond hair can have a skin-like colour).
    hair, heads = hair_and_heads(image, faces, person, skin)
    skin = skin * (1.0 - hair)
    lap("hair")
    # 6. Pose, when asked.
    body = None
    if cfg.pose if pose is None else pose:
        body = estimate_pose(image)
        lap("pose")
    return Perception(faces=faces, person=person, skin=skin, skin_tones=tones, pose=body, hair=hair, hair_heads=heads,
                      timings=laps.timings)
