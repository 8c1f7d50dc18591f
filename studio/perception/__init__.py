"""Perception: faces, person mask, skin, hair and pose for a photo. mediapipe is imported on first use.

    from studio.perception import perceive
    p = perceive(image_rgb_uint8, cfg.perception)
    p.faces, p.person, p.skin, p.skin_tones, p.hair, p.timings
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..config import PerceptionConfig
from ..timing import Laps
from ..types import Perception


def perceive(image: np.ndarray, cfg: PerceptionConfig, pose: Optional[bool] = None) -> Perception:
    from .faces import get_face_backend
    from .person import estimate_pose, hair_mask, segment_person
    from .skin import skin_mask, skin_tone

    laps = Laps()
    lap = laps.lap
    faces = get_face_backend(cfg.face_backend, cfg).detect(image)
    lap("faces")
    person = segment_person(image)
    lap("person")
    skin = skin_mask(image, faces, person)
    tones = [skin_tone(image, f) for f in faces]
    lap("skin")
    hair = hair_mask(image, faces, person, skin)
    skin = skin * (1.0 - hair)
    lap("hair")
    body = None
    if cfg.pose if pose is None else pose:
        body = estimate_pose(image)
        lap("pose")
    return Perception(faces=faces, person=person, skin=skin, skin_tones=tones, pose=body, hair=hair,
                      timings=laps.timings)
