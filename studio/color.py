"""Colour and image-size helpers every layer shares (a leaf module: numpy, OpenCV and studio.config only).

    rgb = hex_to_rgb(["#1a1a1a", "#f2c9a0"])     # float32 (N, 3) in [0, 1]
    lab = rgb_to_lab(image)                      # float RGB in [0, 1] or RGB uint8 -> L*a*b* (L in [0, 100])
    small, k = shrink(frame, 1280)               # long side at most 1280 px, and the scale used
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from .config import ConfigError

REFERENCE_SIDE = 768.0  # factor settings are tuned at this long side and scaled with the image


def image_scale(shape: Sequence[int]) -> float:
    """How large an image is against the side the factors were tuned at (line widths, blur radii scale by it)."""
    return max(shape[0], shape[1]) / REFERENCE_SIDE


def hex_to_rgb(colors) -> np.ndarray:
    """('#rrggbb', ...) → float32 (N, 3) in [0, 1]; ConfigError for anything else."""
    if isinstance(colors, str):
        colors = [colors]
    out = []
    for c in colors:
        s = c.lstrip("#") if isinstance(c, str) else ""
        if len(s) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in s):
            raise ConfigError(f"colour {c!r} is not #rrggbb")
        out.append([int(s[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])
    return np.asarray(out, dtype=np.float32).reshape(-1, 3)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] (or RGB uint8) → CIE L*a*b* float32 (L in [0, 100])."""
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* → float RGB clipped to [0, 1]."""
    return np.clip(cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def to_u8(img: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] → uint8, rounded."""
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def smoothstep(e0: float, e1: float, x: np.ndarray | float) -> np.ndarray | float:
    t = np.clip((np.asarray(x, dtype=np.float32) - e0) / (e1 - e0 + 1e-12), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def shrink(frame: np.ndarray, side: Optional[int]) -> tuple[np.ndarray, float]:
    """The frame area-averaged down so its long side is at most `side` (None or 0: no limit), and the scale used
    (1.0: the frame itself)."""
    h, w = frame.shape[:2]
    if not side or max(h, w) <= side:
        return frame, 1.0
    k = side / max(h, w)
    return cv2.resize(frame, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA), k
