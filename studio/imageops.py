"""Small image operations whose results depend only on their inputs (leaf module: numpy, scipy.fft and OpenCV).

OpenCV picks some kernels by the alignment of the buffers it is given, and numpy guarantees only 16-byte
alignment, so where a buffer lands on the heap (which, with several threads allocating, depends on how they
interleave) can change a result. `cv2.magnitude` is one: on AVX2 CPUs it gives another last bit for a 32-byte
aligned output than for a 16-byte aligned one (tests/test_imageops.py checks the replacement). Others split the
image into stripes by OpenCV's thread count and compute a stripe's ragged end another way: `global_smooth`. The
realtime stream runs its stages in threads and must give the same frames as when they run one after another.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import scipy.fft


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


def global_smooth(guide: np.ndarray, src: np.ndarray, lam: float, sigma: float, iterations: int = 3) -> np.ndarray:
    """cv2.ximgproc.fastGlobalSmootherFilter(guide, src, lam, sigma, num_iter=iterations) (guide uint8 with 1 or 3
    channels; each iteration a quarter of the previous lambda), the same whatever OpenCV's thread count and whatever
    else runs at the same time.

    That filter cuts the rows (and the columns) into as many stripes as cv2.getNumThreads() and solves them four at a
    time with SIMD, a stripe's last one to three one at a time in scalar code that rounds otherwise (as do a row's
    last columns). When the thread pool is busy with another call (the stream's stages run side by side) the stripes
    run as one, so the same call gave other last bits, and now and then another grey level (a 1080p frame's ink: 2
    pixels, one frame in 30, in 3 of 5 runs). Here the image is padded so that every stripe is a multiple of four
    rows and of four columns, whole or merged, and a row's scalar end falls in the padding, and cropped back. The
    padding's guide is the border's colour with its top bit flipped (128 levels away in every channel), which the
    filter's weights decouple from the image (exp(-128 / sigma) per channel)."""
    h, w = guide.shape[:2]
    n = max(1, cv2.getNumThreads())
    bottom, right = _aligned(h, n) - h, _aligned(w + 4, n) - w
    edge = np.full((1,) * guide.ndim, 0x80, np.uint8)
    padded_guide = cv2.copyMakeBorder(guide, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    padded_guide[h:] ^= edge
    padded_guide[:h, w:] ^= edge
    padded_src = cv2.copyMakeBorder(src, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    out = cv2.ximgproc.fastGlobalSmootherFilter(padded_guide, padded_src, lam, sigma, lambda_attenuation=0.25,
                                                num_iter=iterations)
    return np.ascontiguousarray(out[:h, :w])


def _aligned(size: int, stripes: int) -> int:
    """The least length >= `size` that is a multiple of 4 and cut into `stripes` stripes of ceil(length / stripes),
    cuts at multiples of 4 too (a multiple of 4 * stripes always is)."""
    length = size
    while length % 4 or -(-length // stripes) % 4:
        length += 1
    return length


def l0_smooth(img: np.ndarray, lam: float, kappa: float = 3.0, beta_max: float = 1e5) -> np.ndarray:
    """L0 gradient minimisation (Xu, Lu, Xu and Jia, SIGGRAPH Asia 2011; their reference algorithm, periodic
    boundaries, solved in the Fourier domain): flat regions with sharp steps. `img` (H, W, C) uint8 or float in
    [0, 1]; `lam` weighs the number of non-zero gradients (image in [0, 1]); float32 out.

    Written here because cv2.ximgproc.l0Smooth (opencv-contrib 4.11) is not this: on a 400 px photo in [0, 1] it
    returns values from -0.26 to 2.02 (blown highlights, a glow along the lower edge), and the photo moved by one
    pixel, circularly, gives another picture (86 grey levels apart on average, moved back). This one stays in
    range and moves with the photo (0.005 grey levels apart), at a third of the cost (93 ms at 400 x 400 px on 2 cores,
    against 265): the channels are planes (C, H, W) and every step writes into buffers allocated once."""
    s = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    s = np.ascontiguousarray((s[:, :, None] if s.ndim == 2 else s).transpose(2, 0, 1))  # (C, H, W): planes
    h, w = s.shape[1:]
    wx = 2.0 - 2.0 * np.cos(2.0 * np.pi * np.fft.rfftfreq(w))
    wy = 2.0 - 2.0 * np.cos(2.0 * np.pi * np.fft.fftfreq(h))
    grad2 = (wx[None, :] + wy[:, None]).astype(np.float32)  # |F(d/dx)|^2 + |F(d/dy)|^2
    f_img = scipy.fft.rfft2(s, axes=(1, 2), workers=-1)
    gx, gy, div = np.empty_like(s), np.empty_like(s), np.empty_like(s)
    beta = 2.0 * lam
    while beta < beta_max:
        # Gradients (forward differences, wrapping), kept only where they pay for themselves.
        np.subtract(s[:, :, 1:], s[:, :, :-1], out=gx[:, :, :-1])
        np.subtract(s[:, :, :1], s[:, :, -1:], out=gx[:, :, -1:])
        np.subtract(s[:, 1:], s[:, :-1], out=gy[:, :-1])
        np.subtract(s[:, :1], s[:, -1:], out=gy[:, -1:])
        energy = np.einsum("chw,chw->hw", gx, gx) + np.einsum("chw,chw->hw", gy, gy)
        keep = (energy >= lam / beta).astype(np.float32)
        gx *= keep
        gy *= keep
        # The image closest to the photo with those gradients: -div(g) solved in the Fourier domain.
        np.subtract(gx[:, :, :-1], gx[:, :, 1:], out=div[:, :, 1:])
        np.subtract(gx[:, :, -1:], gx[:, :, :1], out=div[:, :, :1])
        div[:, 1:] += gy[:, :-1]
        div[:, :1] += gy[:, -1:]
        div -= gy
        f = scipy.fft.rfft2(div, axes=(1, 2), workers=-1)
        f *= beta
        f += f_img
        f /= 1.0 + beta * grad2
        s = scipy.fft.irfft2(f, s=(h, w), axes=(1, 2), workers=-1).astype(np.float32, copy=False)
        beta *= kappa
    out = s.transpose(1, 2, 0)
    return np.ascontiguousarray(out) if img.ndim == 3 else np.ascontiguousarray(out[:, :, 0])


def bilinear_at(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """img (H, W) or (H, W, C) read at the points (x, y), bilinearly, the points clamped to the image (float64 weights:
    the result is float64 for a float32 image)."""
    h, w = img.shape[:2]
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    if img.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def clip_unit(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    """A float32 array clipped to [0, 1] by OpenCV thresholds (numpy's clip took 3 ms on a 1080p frame, cv2.min and
    cv2.max with a scalar 0.6, these two a third of that); with `inplace` (`x` a temporary of the caller's) into `x`
    itself. Each new buffer cost more than the pass that fills it: a ramp's three passes over 960 x 540 px 0.44 ->
    0.25 ms with the thresholds in place (the ink's ramps and clips: ~40 a 1080p frame)."""
    y = cv2.threshold(x, 1.0, 1.0, cv2.THRESH_TRUNC, dst=x if inplace else None)[1]
    return cv2.threshold(y, 0.0, 0.0, cv2.THRESH_TOZERO, dst=y)[1]


DISC_STAIRCASE_FROM = 15  # px: from this diameter on, `disc_morphology` takes the rectangles (faster; same result)


def disc_morphology(img: np.ndarray, k: int, op: int) -> np.ndarray:
    """cv2.morphologyEx(img, op, MORPH_ELLIPSE (k, k)) for op MORPH_DILATE, MORPH_ERODE, MORPH_CLOSE or
    MORPH_BLACKHAT (uint8, one channel, OpenCV's default border), bit for bit, in a third of the time for a large
    odd k. OpenCV visits every point of a non-rectangular kernel (a 35-px disc: 960 per pixel); the disc is the
    union of a staircase of centred rectangles (each row's span, as far up and down as the rows are that wide) and a
    dilation by a union is the maximum of the dilations (an erosion the minimum), each rectangle separable and the
    row passes grown one from the last: a 35-px black hat over a 1080p close-up's eye band 10 -> 3.5 ms."""
    if k < DISC_STAIRCASE_FROM or k % 2 == 0:  # an even disc is not centred on its anchor
        return cv2.morphologyEx(img, op, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if op == cv2.MORPH_CLOSE:
        return disc_morphology(disc_morphology(img, k, cv2.MORPH_DILATE), k, cv2.MORPH_ERODE)
    if op == cv2.MORPH_BLACKHAT:
        return cv2.subtract(disc_morphology(img, k, cv2.MORPH_CLOSE), img)
    if op not in (cv2.MORPH_DILATE, cv2.MORPH_ERODE):
        raise ValueError(f"disc_morphology: unsupported op {op}")
    step, combine = (cv2.dilate, cv2.max) if op == cv2.MORPH_DILATE else (cv2.erode, cv2.min)
    out, rows, width = None, img, 1
    for w, h in _disc_staircase(k):  # widths ascending
        if w > width:
            rows, width = step(rows, np.ones((1, w - width + 1), np.uint8)), w
        part = step(rows, np.ones((h, 1), np.uint8)) if h > 1 else rows
        out = part if out is None else combine(out, part)
    return out


@functools.cache
def _disc_staircase(k: int) -> tuple:
    """MORPH_ELLIPSE (k, k) as the fewest centred rectangles (width, height) whose union it is, widths ascending:
    for each row half-width h, the rows at least that wide (a convex, symmetric disc: a centred run of rows)."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    centre = k // 2
    half = [int(np.flatnonzero(row).max()) - centre for row in disc]
    rects = []
    for h in sorted(set(half)):
        reach = max(abs(i - centre) for i, hh in enumerate(half) if hh >= h)
        rects.append((2 * h + 1, 2 * reach + 1))
    return tuple(r for r in rects if not any(o != r and o[0] >= r[0] and o[1] >= r[1] for o in rects))


# OpenCV anti-aliases (LINE_AA) only on 8-bit images, and even there a filled shape's inside is rasterised whole pixel
# by whole pixel (only its rim is softened): on a float image every pixel is in or out. A feature drawn either way jumps
# by a pixel as its landmarks move by parts of one (a grey level of noise moved a profile face's lash line by a pixel
# here and there). What is drawn to be soft is drawn SUPERSAMPLE times finer a side, anti-aliased, on an 8-bit canvas
# around it, and averaged back (cv2.INTER_AREA): each pixel's share covered, to a 16th of a pixel.
SUPERSAMPLE = 4


def _fine_box(shape, points: np.ndarray, shift: int, reach: float):
    """(rows, cols) around `points` ((n, 2) in `shift`-bit fixed point) padded by `reach` px, within `shape`; None
    where nothing is left."""
    xy = points.reshape(-1, 2).astype(np.float64) / (1 << shift)
    x0, y0 = np.floor(xy.min(axis=0) - reach).astype(int)
    x1, y1 = np.ceil(xy.max(axis=0) + reach).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(int(shape[1]), x1), min(int(shape[0]), y1)
    return (slice(y0, y1), slice(x0, x1)) if x1 > x0 and y1 > y0 else None


FINE_SHIFT = 3  # the fine canvas' points in 1/8 of its pixels


def _on_fine(points: np.ndarray, shift: int, box) -> np.ndarray:
    """Points in `shift`-bit fixed point as (n, 1, 2) int32 on the fine canvas of `box` in FINE_SHIFT-bit fixed
    point. A pixel's centre x lies at SUPERSAMPLE * x + (SUPERSAMPLE - 1) / 2 of the fine canvas: the middle of the
    fine pixels INTER_AREA averages into it."""
    origin = np.array([box[1].start, box[0].start], np.float64)
    fine = SUPERSAMPLE * (points.reshape(-1, 2).astype(np.float64) / (1 << shift) - origin) + (SUPERSAMPLE - 1) / 2
    return np.round(fine * (1 << FINE_SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _fine_canvas(box) -> np.ndarray:
    return np.zeros(((box[0].stop - box[0].start) * SUPERSAMPLE, (box[1].stop - box[1].start) * SUPERSAMPLE),
                    np.uint8)


def _coverage(fine: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] of a fine canvas drawn at 255: each pixel's share covered."""
    small = cv2.resize(fine, (fine.shape[1] // SUPERSAMPLE, fine.shape[0] // SUPERSAMPLE),
                       interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) * np.float32(1.0 / 255.0)


def fill_coverage(shape, polygons, shift: int = 0, holes=()) -> np.ndarray:
    """float32 (H, W) in [0, 1]: the share of each pixel `polygons` (int32 points in `shift`-bit fixed point) cover,
    less `holes` (the same, cut out of each). Each polygon is drawn in its own box; where they overlap, the larger
    share."""
    out = np.zeros(tuple(shape[:2]), np.float32)
    for poly in polygons:
        box = _fine_box(shape, poly, shift, 1.0)
        if box is None:
            continue
        fine = _fine_canvas(box)
        cv2.fillPoly(fine, [_on_fine(poly, shift, box)], 255, cv2.LINE_AA, shift=FINE_SHIFT)
        for hole in holes:
            cv2.fillPoly(fine, [_on_fine(hole, shift, box)], 0, cv2.LINE_AA, shift=FINE_SHIFT)
        np.maximum(out[box], _coverage(fine), out=out[box])
    return out


def disc_coverage(shape, centre, radius: float) -> np.ndarray:
    """float32 (H, W) in [0, 1]: the share of each pixel a disc of `radius` px about `centre` (x, y) covers."""
    out = np.zeros(tuple(shape[:2]), np.float32)
    c = np.asarray(centre, np.float64).reshape(1, 2)
    box = _fine_box(shape, c, 0, float(radius) + 1.0)
    if box is None:
        return out
    fine = _fine_canvas(box)
    at = _on_fine(c, 0, box).reshape(2)
    cv2.circle(fine, (int(at[0]), int(at[1])), int(round(SUPERSAMPLE * radius * (1 << FINE_SHIFT))), 255, -1,
               cv2.LINE_AA, shift=FINE_SHIFT)
    out[box] = _coverage(fine)
    return out


def stroke_coverage(shape, points: np.ndarray, closed: bool, thickness: float, shift: int = 0):
    """A polyline's coverage, drawn in its own box: (box, float32 share of each of its pixels covered) with box
    (rows, cols) within `shape`, or None where nothing of it lies in the image. `points` (n, 2) int32 in `shift`-bit
    fixed point; `thickness` in px, at least one: a width between two a fine canvas draws is their blend, so a stroke
    thickens smoothly with its face (cv2 takes whole pixels, and draws an odd width as wide as the even one above
    it: the blend is between even widths)."""
    t = SUPERSAMPLE * max(1.0, float(thickness))
    lo = 2 * int(t / 2)
    frac = (t - lo) / 2
    box = _fine_box(shape, points, shift, (lo + 2) / (2 * SUPERSAMPLE) + 2.0)  # half the width, the caps, the rim
    if box is None:
        return None
    pts = _on_fine(points, shift, box)

    def drawn(width: int) -> np.ndarray:
        fine = _fine_canvas(box)
        cv2.polylines(fine, [pts], closed, 255, width, cv2.LINE_AA, shift=FINE_SHIFT)
        return _coverage(fine)

    cov = drawn(lo)
    if frac > 1e-3:
        cov += (drawn(lo + 2) - cov) * np.float32(frac)
    return box, cov
