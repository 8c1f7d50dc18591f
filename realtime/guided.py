"""The student at a fixed working size, flattened there, brought back to the frame's size (optionally by a guided
filter).

    small = to_work_size(frame, WORK_SIDE)                  # RGB uint8, long side WORK_SIDE (or the frame itself)
    y_small = flatten(student(small), small, texture)       # RGB uint8, the student's output made flat as cels
    y = guided_upsample(frame, small, y_small)              # RGB uint8 at the frame's size, the frame as the guide

`flatten` is an edge-preserving smoother (OpenCV contrib's fast global smoother, Min et al. 2014: a weighted least
squares fit solved by rows and columns) of the student's output, guided by the mean of that output and the photo
at the working size: the low-contrast texture a small network leaves inside a region goes; an edge stays where the
photo or the output has one; a guided filter by the same guide, fitted at half the size, then smooths the
axis-aligned steps the smoother's row and column solves leave where its guide changes slowly (bokeh, skies). Its
strength follows the texture factor as the teacher's own smoothing does
(`studio.stylize.cartoonizer.abstract`: none at 0). The teacher paints flat cels; the student alone cannot (flat
share 0.47 against the teacher's 0.55 on the held-out photos). With this step at the factors 0.6 the whole
realtime step is 24.01 -> 24.71 dB from the teacher, SSIM 0.831 -> 0.859, flat share 0.57, for 5-7 ms at 512x288
and 7-12 ms at 512² on the 2-core EPYC (docs/PERFORMANCE.md, "Realtime fidelity"). studio.imageops.global_smooth
runs the smoother so that it gives the same pixels under any thread split.

The network's cost grows with the pixels it sees; a 1080p frame at full size cost the int8 student 57 ms on the
AVX-512 EPYC (259 ms on an AVX2-only one). The students learn 384-px pairs, so a larger frame is also further from
what they know: on 7 held-out photos at 1024 px the classic student at full size was 20.84 dB from the teacher, run
at 512 px and resized back up 21.06 dB, with this filter 21.14 (the whole realtime step 22.14 and 22.29). The filter
costs 28 ms per 1080p frame where the resize costs 1, so the realtime step resizes by default
(realtime.student.stylize_frame's `upsample`); docs/PERFORMANCE.md, "Student at a working size". An oracle (the
teacher's own output brought down and back up, tools/student_oracle.py) is 0.6-2.6 dB *worse* with this filter than
with a resize: the teacher's cels are not a locally linear function of the photo. What issue 14 asks for is a guide
trained with the network; this is the untrained layer it would start from.

The fast guided filter (He and Sun, "Fast Guided Filter", 2015; the layer Wu et al. train end to end in "Fast
End-to-End Trainable Guided Filter", CVPR 2018): at the working size, in each (2r+1)² window, each output channel
is fitted as a linear function of the frame's grey level, `y ≈ a · grey + b` (ridge `eps`); a and b, averaged,
are resized to the full size and applied to the full-size grey frame. Where the output follows the photo's
edges, they land on the photo's own pixels instead of the working grid's; flat regions stay flat (a ≈ 0).
Every pass is OpenCV on whole arrays: a separable box filter (`box_mean`, deterministic under any thread split)
at the working size, and two resizes and a multiply-add at the full size.
"""
from __future__ import annotations

import cv2
import numpy as np

from studio.imageops import global_smooth
from studio.stylize.cartoonizer import box_mean, shrink_by

WORK_SIDE = 512  # px: the long side the student runs at; larger frames are brought down to it
GUIDE_RADIUS = 2  # px at the working size: the window of the local linear fit is (2r+1)²
GUIDE_EPS = 1e-4  # ridge of the fit (grey levels in [0, 1]): small keeps the photo's edges sharp
FLATTEN_LAMBDA = 800.0  # the smoother's strength (px² at the working size) from the texture factor 0.5 up ...
FLATTEN_SIGMA = 3.0  # ... and its colour scale (grey levels): a sweep of both, docs/PERFORMANCE.md
FLATTEN_ITERATIONS = 2  # the smoother's passes (OpenCV's default 3: the same fidelity and flatness, 1 ms more at 512²)
FLATTEN_DEBLOCK_RADIUS = 1  # px at half the working size: the window of the fit that smooths the smoother's steps
FLATTEN_DEBLOCK_EPS = 5e-4  # its ridge (grey levels in [0, 1]): where the guide varies less, the output is averaged


def work_size(shape, side: int = WORK_SIDE) -> tuple[int, int]:
    """(w, h) the student runs at for a frame of `shape`: the frame's own size when its long side is at most `side`,
    else scaled to a long side of `side`."""
    h, w = shape[:2]
    if max(h, w) <= side:
        return w, h
    s = side / max(h, w)
    return max(1, round(w * s)), max(1, round(h * s))


def to_work_size(image: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """The RGB uint8 frame at `work_size` (itself when it is small enough): area-averaged by the largest whole
    factor, then bilinear for the rest (OpenCV's area resize by a fractional factor sums rows in an order that
    depends on its threads: the pipelined stream must give the sequential frames bit for bit)."""
    w, h = work_size(image.shape, side)
    if (w, h) == (image.shape[1], image.shape[0]):
        return image
    q = int(min(image.shape[0] / h, image.shape[1] / w))
    small = shrink_by(image, q) if q >= 2 else image
    if (small.shape[1], small.shape[0]) != (w, h):
        small = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(small)


def flatten(rgb8: np.ndarray, small: np.ndarray, texture: float) -> np.ndarray:
    """The student's RGB uint8 output at the working size, flat where it and `small` (the frame at that size, RGB
    uint8) are nearly flat, as strongly as the texture factor asks (see the module doc): itself at texture 0."""
    t = min(1.0, 2.0 * float(np.clip(texture, 0.0, 1.0)))
    if t <= 0.0:
        return rgb8
    guide = cv2.addWeighted(small, 0.5, rgb8, 0.5, 0.0)
    flat = global_smooth(guide, rgb8, FLATTEN_LAMBDA * t * t, FLATTEN_SIGMA, FLATTEN_ITERATIONS)
    # The smoother solves rows and columns one at a time: where its guide changes slowly (bokeh, a sky) its regions
    # ended in axis-aligned steps, a staircase of 4-10 px blocks that neither the photo nor the network has. A guided
    # filter by the same guide fits each window of the flattened output as a linear function of that guide: the steps
    # that neither shows are smoothed out, the edges either shows are kept. Fitted at half the working size and
    # applied at it (the fast guided filter, as `guided_upsample`); docs/PERFORMANCE.md, "The flatten's staircase".
    return _deblocked(flat, guide)


def _deblocked(flat: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """`flat` (RGB uint8) through the guided filter by `guide` (RGB uint8, its grey) that `flatten` ends with, fitted
    at half the size (an odd side padded by its last row or column, then cropped)."""
    h, w = guide.shape[:2]
    if min(h, w) < 4 * (2 * FLATTEN_DEBLOCK_RADIUS + 1):
        return flat
    bottom, right = h % 2, w % 2
    if bottom or right:
        guide = cv2.copyMakeBorder(guide, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
        flat = cv2.copyMakeBorder(flat, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    out = guided_upsample(guide, shrink_by(guide, 2), shrink_by(flat, 2), FLATTEN_DEBLOCK_RADIUS, FLATTEN_DEBLOCK_EPS)
    return out if not (bottom or right) else np.ascontiguousarray(out[:h, :w])


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1.0 / 255.0)


def guided_upsample(image: np.ndarray, small: np.ndarray, out_small: np.ndarray, radius: int = GUIDE_RADIUS,
                    eps: float = GUIDE_EPS) -> np.ndarray:
    """The student's output at the working size (`out_small`: float (h, w, 3) in [0, 1] or RGB uint8, for `small`,
    the frame at that size) as RGB uint8 at the size of `image` (the full-size RGB uint8 frame, the guide)."""
    H, W = image.shape[:2]
    p = out_small.astype(np.float32) * np.float32(1.0 / 255.0) if out_small.dtype == np.uint8 else \
        np.ascontiguousarray(out_small, np.float32)
    a, b = _linear_fit(_grey(small), p, radius, eps)
    # At the full size, three passes over the frame: y = b, y += a * grey (a scaled for the 8-bit grey), y as uint8
    # (saturated: convertScaleAbs would fold a negative value up). 33 -> 19 ms per 1080p frame against two separate
    # products and a clip.
    a = cv2.resize(a * np.float32(1.0 / 255.0), (W, H), interpolation=cv2.INTER_LINEAR)
    y = cv2.resize(b, (W, H), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB).astype(np.float32)
    cv2.accumulateProduct(grey, a, y)
    return cv2.addWeighted(y, 255.0, y, 0.0, 0.0, dtype=cv2.CV_8U)


def _linear_fit(g: np.ndarray, p: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's fit (He et al.): in each (2r+1)² window each channel of `p` (float (h, w, 3)) as
    `a · g + b` of the grey guide `g` (float (h, w) in [0, 1]), ridge `eps`; a and b averaged over the windows that
    hold each pixel."""
    k = 2 * radius + 1
    m_g = box_mean(g, k)
    var = cv2.add(cv2.subtract(box_mean(cv2.multiply(g, g), k), cv2.multiply(m_g, m_g)), float(eps))
    g3, m_g3 = cv2.merge([g, g, g]), cv2.merge([m_g, m_g, m_g])
    m_p = box_mean(p, k)
    cov = cv2.subtract(box_mean(cv2.multiply(p, g3), k), cv2.multiply(m_p, m_g3))
    a = cv2.divide(cov, cv2.merge([var, var, var]))
    b = cv2.subtract(m_p, cv2.multiply(a, m_g3))
    return box_mean(a, k), box_mean(b, k)

