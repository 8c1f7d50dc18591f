"""Small image operations whose results depend only on their inputs (leaf module: numpy only).

OpenCV picks some kernels by the alignment of the buffers it is given, and numpy guarantees only 16-byte
alignment, so where a buffer lands on the heap (which, with several threads allocating, depends on how they
interleave) can change a result. `cv2.magnitude` is one: on AVX2 CPUs it gives another last bit for a 32-byte
aligned output than for a 16-byte aligned one (tests/test_imageops.py checks the replacement). The realtime
stream runs its stages in threads and must give the same frames as when they run one after another.
"""
from __future__ import annotations

import numpy as np


def gradient_magnitude(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """sqrt(gx² + gy²) as float32, the same on every CPU and for every buffer address: numpy's elementwise loops
    (separate multiplies and add, no fused multiply-add; a correctly rounded square root). Integer gradients
    are squared and summed exactly in int32; for a 3x3 Sobel of uint8 (|g| <= 1020) the sum is exact in float32
    too, so float and integer gradients give the correctly rounded magnitude (and faster than cv2.magnitude with
    its float conversions: docs/PERFORMANCE.md, "Pipelined = sequential on every machine")."""
    if np.issubdtype(gx.dtype, np.integer):
        x = gx.astype(np.int32)
        x *= x
        y = gy.astype(np.int32)
        y *= y
        x += y
        return np.sqrt(x, dtype=np.float32)
    x = np.multiply(gx, gx, dtype=np.float32)
    x += np.multiply(gy, gy, dtype=np.float32)
    return np.sqrt(x, out=x)
