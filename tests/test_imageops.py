"""studio.imageops: results that depend only on the inputs."""
import threading

import cv2
import numpy as np

from studio.imageops import (disc_coverage, disc_morphology, fill_coverage, global_smooth, gradient_magnitude,
                             l0_smooth, stroke_coverage)


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


def test_global_smooth_is_the_same_for_any_thread_count_and_beside_another_call(load_media):
    """cv2.ximgproc.fastGlobalSmootherFilter itself gives other last bits for another thread count, and beside a
    concurrent call (its stripes then run as one): a 1080p stream frame's ink came out a grey level apart at two
    pixels. global_smooth pads to whole four-row and four-column stripes: one answer, and the filter's own answer
    up to rounding."""
    photo = load_media("two_people_01.jpg")
    guide = cv2.resize(photo, (963, 541), interpolation=cv2.INTER_AREA)  # ragged stripes for 1 to 4 threads
    src = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY).astype(np.float32)  # float out: every last bit shows
    threads = cv2.getNumThreads()
    try:
        raw, ours = {}, {}
        for n in (1, 2, 3, 4):
            cv2.setNumThreads(n)
            raw[n] = cv2.ximgproc.fastGlobalSmootherFilter(guide, src, 100.0, 5.0)
            ours[n] = global_smooth(guide, src, 100.0, 5.0)
        assert any(not np.array_equal(raw[1], raw[n]) for n in (2, 3, 4))  # the filter alone: not one answer
        for n in (2, 3, 4):
            np.testing.assert_array_equal(ours[n], ours[1])
        assert ours[1].shape == src.shape and ours[1].flags.c_contiguous
        np.testing.assert_allclose(ours[1], raw[1], atol=0.01)  # the padding does not reach into the image
        one = cv2.cvtColor(guide[:, :, :1], cv2.COLOR_GRAY2RGB)[:, :, 0]  # a one-channel guide pads the same way
        np.testing.assert_allclose(global_smooth(one, src, 100.0, 5.0),
                                   cv2.ximgproc.fastGlobalSmootherFilter(one, src, 100.0, 5.0), atol=0.01)

        cv2.setNumThreads(2)
        stop = threading.Event()
        other = cv2.resize(photo, (1280, 720))

        def busy():  # another stage filtering at the same time
            while not stop.is_set():
                cv2.ximgproc.fastGlobalSmootherFilter(other, other, 100.0, 5.0)

        worker = threading.Thread(target=busy)
        worker.start()
        try:
            beside = [global_smooth(guide, src, 100.0, 5.0) for _ in range(6)]
        finally:
            stop.set()
            worker.join()
        for got in beside:
            np.testing.assert_array_equal(got, ours[1])
    finally:
        cv2.setNumThreads(threads)


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


def test_disc_morphology_is_opencvs_with_the_ellipse_bit_for_bit(load_media):
    grey = cv2.cvtColor(load_media("portrait_glasses_beard_brown_skin_01.jpg"), cv2.COLOR_RGB2GRAY)
    rng = np.random.default_rng(3)
    crops = [grey[100:560, 80:900], grey[:40, :25], grey[:4, :90], rng.integers(0, 256, (300, 3), dtype=np.uint8),
             rng.integers(0, 256, (1, 1), dtype=np.uint8)]
    for k in (9, 15, 16, 21, 35, 51):  # under DISC_STAIRCASE_FROM, even and odd
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        for crop in crops:
            crop = np.ascontiguousarray(crop)
            for op in (cv2.MORPH_DILATE, cv2.MORPH_ERODE, cv2.MORPH_CLOSE, cv2.MORPH_BLACKHAT):
                assert np.array_equal(disc_morphology(crop, k, op), cv2.morphologyEx(crop, op, disc)), (k, crop.shape,
                                                                                                      op)


def _centre_y(cov: np.ndarray, rows: slice) -> float:
    ys = np.arange(rows.start, rows.stop, dtype=np.float64)[:, None]
    return float((cov * ys).sum() / cov.sum())


def test_drawn_features_move_and_thicken_by_parts_of_a_pixel():
    """OpenCV draws every pixel in or out on a float image, and on an 8-bit one anti-aliases a filled shape's rim only:
    a face's strokes jumped by a pixel as its landmarks moved by a tenth of one. The coverage drawn here follows a
    move of an eighth of a pixel to within a 20th (measured up to 0.034 for strokes, 0.05 for a fill), and widens by
    as much for each quarter pixel of width."""
    t = np.linspace(0, np.pi, 9)
    half = np.stack([30 + 12 * np.cos(t), 20 - 5 * np.sin(t)], 1)  # a lash line's shape
    rows = slice(0, 40)
    for move in np.arange(1, 8) / 8:
        for width in (1.0, 2.2, 3.0):
            at0, c0 = stroke_coverage((40, 60), np.round(half * 16).astype(np.int32), False, width, 4)
            at1, c1 = stroke_coverage((40, 60), np.round((half + [0, move]) * 16).astype(np.int32), False, width, 4)
            assert abs(_centre_y(c1, at1[0]) - _centre_y(c0, at0[0]) - move) < 0.05, (move, width)
        f0 = fill_coverage((40, 60), [np.round(half * 16).astype(np.int32).reshape(-1, 1, 2)], 4)
        f1 = fill_coverage((40, 60), [np.round((half + [0, move]) * 16).astype(np.int32).reshape(-1, 1, 2)], 4)
        assert abs(_centre_y(f1, rows) - _centre_y(f0, rows) - move) < 0.08, move
        d0, d1 = disc_coverage((40, 60), (20.3, 10.0), 2.5), disc_coverage((40, 60), (20.3, 10.0 + move), 2.5)
        assert abs(_centre_y(d1, rows) - _centre_y(d0, rows) - move) < 0.05, move
    assert ((f0 > 0.1) & (f0 < 0.9)).sum() > 20  # soft along its rim, not in or out
    line = np.round(np.array([[5.0, 20.0], [50.0, 20.0]]) * 16).astype(np.int32)  # 45 px long
    ink = [float(stroke_coverage((40, 60), line, False, w, 4)[1].sum()) for w in np.arange(1.0, 4.01, 0.25)]
    assert (np.abs(np.diff(ink) - 45 / 4) < 45 / 16).all(), np.diff(ink)


def test_a_shape_drawn_in_a_box_is_the_whole_images_there():
    """Coverage is drawn in each shape's own box (the cost of its box, not of the image): the same as in a larger
    image, moved by whole pixels."""
    t = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    oval = np.stack([100.37 + 30 * np.cos(t), 60.81 + 40 * np.sin(t)], 1)
    pts = np.round(oval * 16).astype(np.int32).reshape(-1, 1, 2)
    whole = fill_coverage((200, 300), [pts], 4)
    moved = fill_coverage((120, 130), [pts - (np.array([50, 10], np.int32) << 4)], 4)
    assert moved.sum() > 0.9 * np.pi * 30 * 40
    np.testing.assert_array_equal(moved, whole[10:130, 50:180])
    np.testing.assert_array_equal(whole[:10], 0)
