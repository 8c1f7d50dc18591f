"""A photo's own frame: a thin border of one colour all round it (a print's or a web gallery's), which the studio
keeps as a flat border instead of stylising it. Stylised with the photo, the frame's inner edge was inked as a line
and its colour bled into the hair it touched (the red-haired portrait's yellow border: dashes along the top, a
yellow notch in the crown).

    frame = find_frame(image_rgb_uint8)   # None, or PhotoFrame(top, bottom, left, right, color)
    rows, cols = frame.inner(image.shape)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

FRAME_TOLERANCE = 48  # levels in any channel: a pixel is the frame's colour this near it (JPEG smears its chroma)
FRAME_RING = 0.9  # share of each side's outermost line that must be the frame's colour
FRAME_EDGE = 0.3  # a line is the photo's where under this share of it is the frame's colour (a blend over it: frame)
FRAME_MAX = 0.03  # of the short side: the widest frame; a border of one colour that runs on is the photo's background


@dataclass(frozen=True)
class PhotoFrame:
    """Widths (px) of a photo's frame on each side and its colour (RGB uint8)."""

    top: int
    bottom: int
    left: int
    right: int
    color: tuple[int, int, int]

    def inner(self, shape) -> tuple[slice, slice]:
        """(rows, cols) of the photo within the frame, for an image of `shape`."""
        h, w = shape[:2]
        return slice(self.top, h - self.bottom), slice(self.left, w - self.right)

    def around(self, inner: np.ndarray, shape) -> np.ndarray:
        """An image of `shape`: `inner` (the photo within, stylised) in this frame, painted flat in its colour."""
        out = np.empty(shape, inner.dtype)
        out[:] = self.color
        out[self.inner(shape)] = inner
        return out


def _share(line: np.ndarray, color: np.ndarray) -> float:
    """The share of a line's pixels (N, 3) within FRAME_TOLERANCE of `color` in every channel."""
    return float((np.abs(line.astype(np.int16) - color).max(axis=1) <= FRAME_TOLERANCE).mean())


def find_frame(image: np.ndarray) -> Optional[PhotoFrame]:
    """The frame of an RGB uint8 photo, or None: every side's outermost line (FRAME_RING of it) is one colour (the
    median of the four), and on every side, within FRAME_MAX of the short side, the lines of that colour end in
    lines that are not (FRAME_EDGE of them at most). A plain wall, a night sky or a white page that runs on past
    FRAME_MAX is the photo's own background, not a frame; so is a border on fewer than four sides."""
    h, w = image.shape[:2]
    most = int(FRAME_MAX * min(h, w))
    if most < 1:
        return None
    sides = {"top": lambda d: image[d], "bottom": lambda d: image[h - 1 - d],
             "left": lambda d: image[:, d], "right": lambda d: image[:, w - 1 - d]}
    ring = np.concatenate([line(0) for line in sides.values()])
    color = np.median(ring, axis=0).astype(np.int16)
    widths = {}
    for side, line in sides.items():
        if _share(line(0), color) < FRAME_RING:
            return None
        width = next((d for d in range(1, most + 1) if _share(line(d), color) < FRAME_EDGE), None)
        if width is None:
            return None
        widths[side] = width
    return PhotoFrame(**widths, color=tuple(int(c) for c in color))
