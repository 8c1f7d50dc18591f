"""studio.imageops: results that depend only on the inputs."""
import cv2
import numpy as np

from studio.imageops import gradient_magnitude


def at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of `a` whose data starts `offset` bytes past a 64-byte boundary (tests/test_stream.py uses it too)."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def test_gradient_magnitude_is_the_rounded_exact_value_wherever_the_buffers_are():
    rng = np.random.default_rng(3)
    grey = cv2.GaussianBlur(rng.integers(0, 256, (271, 483), np.uint8), (0, 0), 1.5)
    grey[100:150, 200:260] = 255  # hard edges: the largest Sobel values
    for depth in (cv2.CV_16S, cv2.CV_32F):  # ink_lines' int16 Sobel, the blender's float one
        gx, gy = cv2.Sobel(grey, depth, 1, 0, ksize=3), cv2.Sobel(grey, depth, 0, 1, ksize=3)
        exact = np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2).astype(np.float32)
        for offset in (0, 4, 16, 32, 48):
            got = gradient_magnitude(at_offset(gx, offset), at_offset(gy, offset))
            assert got.dtype == np.float32 and got.shape == grey.shape
            np.testing.assert_array_equal(got, exact)
    assert gx.dtype == np.float32 and gradient_magnitude(gx, gy) is not gx  # the inputs are left as they were
    np.testing.assert_array_equal(gx, cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3))
