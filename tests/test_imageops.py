"""studio.imageops: results that depend only on the inputs."""
import cv2
import numpy as np

from studio.imageops import gradient_magnitude, l0_smooth


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


def test_l0_smooth_flattens_stays_in_range_and_moves_with_the_photo(load_media):
    # cv2.ximgproc.l0Smooth, which the teacher used before, fails all three on this photo: values from -0.26 to
    # 2.02, and 86 grey levels apart from its own answer to the photo moved by a pixel (circularly).
    img = load_media("two_people_01.jpg")
    img = cv2.resize(img, (400, round(400 * img.shape[0] / img.shape[1])), interpolation=cv2.INTER_AREA)
    lam = 0.018
    flat = l0_smooth(img, lam)
    assert flat.shape == img.shape and flat.dtype == np.float32
    assert -0.05 < flat.min() and flat.max() < 1.05
    # Flat: most neighbours equal (the photo: few), and still the photo on average (no colour drift).
    def still(x):  # share of neighbours less than a grey level apart (measured: photo 0.10, smoothed 0.69)
        return (np.abs(np.diff(x, axis=1)).max(axis=2) < 1 / 255).mean()

    assert still(img.astype(np.float32) / 255) < 0.2 and still(flat) > 0.6
    assert np.abs(flat.mean(axis=(0, 1)) - img.reshape(-1, 3).mean(axis=0) / 255).max() < 0.01
    moved = np.roll(l0_smooth(np.roll(img, (1, 1), axis=(0, 1)), lam), (-1, -1), axis=(0, 1))
    assert np.abs(moved - flat).max() < 2 / 255
    # A noisy step comes out as a clean step; grey (2-D) input is handled too.
    step = np.where(np.arange(64)[None, :] < 32, 0.2, 0.8).repeat(48, axis=0).astype(np.float32)
    noisy = step + np.random.default_rng(0).normal(0, 0.03, step.shape).astype(np.float32)
    out = l0_smooth(noisy, 0.02)
    assert out.shape == step.shape and np.abs(out - step).mean() < 0.01
    assert out[:, 4:28].std() < 0.005 and out[:, 36:60].std() < 0.005 and noisy[:, 4:28].std() > 0.02
