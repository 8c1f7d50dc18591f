"""The classic teacher: a controllable cartoonizer with three perceptual factors in [0, 1].

- **texture** (abstraction): photo detail → edge-preserving smoothing (fast global smoother) → flat cel
  regions (L0 gradient minimisation at a reduced scale, snapped back to edges with a guided filter).
- **color** (quantisation and palette): photo colours → a soft k-means posterisation in CIE L*a*b* whose
  centres are pulled toward the character's palette; the soft assignment gives flat regions with short
  soft transitions instead of hard banding. The centres are a smooth function of the image (no random
  sample or restarts): a grey level of noise moves them by under 2 L*a*b* units on most shared photos.
- **line** (ink): the centre lines of the edges of a smoothed luminance, placed to a fraction of a pixel, faded
  in with their gradient and its coherence (no hard thresholds: stable under noise and shifts), thickened with
  the factor; face features get their own strokes (`face_ink.py`).

Each function is pure: float32 RGB in [0, 1] in, float32 out. `Cartoonizer` wires them for one layer.
Run `python -m studio stylize PHOTO --out DIR --line 0.8` to see the factors at work.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Sequence, Union

import cv2
import numpy as np

from ..characters import Character
from ..color import hex_to_rgb, image_scale, lab_to_rgb, rgb_to_lab, smoothstep, to_u8
from ..imageops import bilinear_at, clip_unit, global_smooth, gradient_magnitude, l0_smooth


# --------------------------------------------------------------------------------------------- texture
def abstract(img: np.ndarray, texture: float, scale: Optional[float] = None) -> np.ndarray:
    """Remove photographic detail: 0 returns the photo, 0.5 smooth shading, 1 flat cel regions. `scale`: the size the
    smoothing is measured against (default: the image's, `image_scale`; a face painted at its own size passes its)."""
    t = float(np.clip(texture, 0.0, 1.0))
    if t <= 0.0:
        return img.astype(np.float32, copy=True)
    scale = image_scale(img.shape) if scale is None else float(scale)
    u8 = to_u8(img)
    # 1. Edge-preserving global smoothing; lambda grows with the factor (and with the square of scale).
    lam = (15.0 + 600.0 * min(1.0, 2.0 * t) ** 2) * scale * scale
    smooth = global_smooth(u8, u8, lam, 4.0 + 3.0 * t).astype(np.float32) / 255.0
    first = min(1.0, 2.0 * t)
    out = img * (1.0 - first) + smooth * first
    if t <= 0.5:
        return out.astype(np.float32)
    # 2. Cel flattening: L0 smoothing at a reduced side (speed), snapped back to full-res edges.
    h, w = img.shape[:2]
    side = 400.0
    f = min(1.0, side / max(h, w))
    small = cv2.resize(to_u8(smooth), (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    flat = np.clip(l0_smooth(small, 0.004 + 0.02 * (t - 0.5) * 2.0, 3.0), 0.0, 1.0)
    flat = cv2.resize(flat, (w, h), interpolation=cv2.INTER_LINEAR)
    flat = cv2.ximgproc.guidedFilter(smooth, flat, max(1, int(round(2 * scale))), 1e-3)
    second = (t - 0.5) * 2.0
    return np.clip(smooth * (1.0 - second) + flat * second, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------- color
@dataclass
class PaletteFit:
    centers_lab: np.ndarray  # (K, 3) after the palette pull
    raw_lab: np.ndarray  # (K, 3) before it


_LAB_WEIGHT = np.array([0.6, 1.0, 1.0], np.float32)  # lightness matters less than chroma for region identity
_BIN = np.array([2.0, 3.0, 3.0], np.float32)  # the histogram's cells (L*, a*, b*): below a visible step
_ANNEAL = (40.0, 20.0, 10.0)  # the soft k-means' temperatures (weighted Lab units squared), _ROUNDS rounds each
# 20 rounds each, not 12: at 12 the colder stages had not settled on a busy photo, and where they stopped moved with the
# input: the marble hall's bright centres moved by 4 L* under one grey level of noise (its background shade 29.7 dB from
# itself; 43.2 at 16 rounds and on; the whole teacher 32.1 -> 40.5 dB, under a one-pixel shift 30.0 -> 34.9). Run to
# convergence instead (centres still by 1e-3), two photos got worse (a room 45.5 -> 33.8 dB): near-degenerate centres
# drift for hundreds of rounds. docs/PERFORMANCE.md, "Teacher against itself".
_ROUNDS = 20


def _histogram(lab: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The image's colours as occupied L*a*b* cells: each cell's mean colour and its weight (pixel count, or the sum
    of the mask there). A one-pixel shift or a grey level of noise moves a few pixels between neighbouring cells:
    the weights change a little, never all at once."""
    x = lab.reshape(-1, 3)
    wt = None
    if mask is not None:
        wt = np.asarray(mask, np.float32).reshape(-1)
        if float(wt.sum()) < 400.0:  # too little of it to fit colours on (an empty mask): the whole image
            wt = None
    cells = np.floor(x / _BIN).astype(np.int64)
    keys = ((cells[:, 0] + 8) * 256 + (cells[:, 1] + 128)) * 256 + (cells[:, 2] + 128)
    uniq, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    weight = np.bincount(inverse, weights=wt, minlength=len(uniq))
    total = np.stack([np.bincount(inverse, weights=x[:, i] * (1.0 if wt is None else wt), minlength=len(uniq))
                      for i in range(3)], axis=1)
    keep = weight > 1e-6
    return (total[keep] / weight[keep, None]).astype(np.float64), weight[keep].astype(np.float64)


def _initial_centres(pts: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """k starting centres that depend smoothly on the colours: half of them the means of equal-weight slices of
    lightness, the rest the chroma-weighted means of equal sectors of hue (soft-windowed, so a colour near a
    sector's edge counts a little in both), which gives a small saturated region (a red shirt) a centre of its own
    as k-means++ did, without its random draws."""
    k_light = (k + 1) // 2
    order = np.argsort(pts[:, 0], kind="stable")
    # Slices of equal square-root weight: a tone that covers little of the image (white clouds over a dark lake)
    # still starts a centre, as k-means++'s spread did.
    flat = np.sqrt(weight[order])
    cum = np.cumsum(flat) / flat.sum()
    centres = []
    edges = np.linspace(0.0, 1.0, k_light + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        # the share of each colour inside [lo, hi) of the cumulative weight: continuous in the weights
        inside = np.clip(np.minimum(cum, hi) - np.maximum(cum - flat / flat.sum(), lo), 0.0, None)
        inside *= weight[order] / flat  # back from square-root weight to the colour's own
        centres.append((pts[order] * inside[:, None]).sum(0) / max(float(inside.sum()), 1e-12))
    k_hue = k - k_light
    if k_hue > 0:
        hue = np.arctan2(pts[:, 2], pts[:, 1])
        chroma = np.hypot(pts[:, 1], pts[:, 2])
        # A sector holding almost nothing would have a mean that jumps with a few pixels: each sector's mean starts
        # from a prior colour (middle lightness, a little chroma at the sector's hue) worth 0.5 % of the image.
        prior_mass = 0.005 * float((weight * chroma).sum()) + 1e-9
        for j in range(k_hue):
            mid = -np.pi + (j + 0.5) * 2.0 * np.pi / k_hue
            window = np.cos(0.5 * (hue - mid)) ** (4 * k_hue)  # a smooth bump around the sector's middle
            wj = weight * chroma * window
            prior = np.array([50.0, 10.0 * np.cos(mid), 10.0 * np.sin(mid)])
            centres.append(((pts * wj[:, None]).sum(0) + prior_mass * prior) / (float(wj.sum()) + prior_mass))
    return np.array(centres, np.float64)


# A clip's palette carried from frame to frame (realtime.renderers.SteadyClip.palette): called with a layer's name and
# the clustering (its start centres, or None for its own deterministic start) and returns the centres to use.
PaletteSteadier = Callable[[str, Callable[[Optional[np.ndarray]], np.ndarray]], np.ndarray]


def _kmeans_lab(lab: np.ndarray, k: int, mask: Optional[np.ndarray], start: Optional[np.ndarray] = None
                ) -> np.ndarray:
    """k colour centres of the image (L*a*b*), a smooth function of it: soft k-means over the image's colour
    histogram from a deterministic start, annealed over _ANNEAL. The old hard k-means on a random sample with
    k-means++ starts flipped between solutions under invisible input changes: abstraction + palette was 29.7-32.5 dB
    from itself under a grey level of noise on three shared photos, 42.4-44.7 with two temperatures (40, 20) and 6
    rounds each. With the flatter abstraction of `l0_smooth` a white background held three centres on one colour, and
    at 20 one of them left it or not with the noise (34.4 dB on group_4faces, 34.5 on portrait_dark_skin_02): a
    third, colder stage (10) and 12 rounds each carry such splits through, 41.7-48.4 dB on seven shared photos, for
    ~12 ms more at 512 px; 20 rounds (_ROUNDS) let a busy photo's centres settle. Nothing here is random, so nothing
    takes a seed. From `start` (a clip's centres carried from its last frame: PaletteSteadier) only the coldest
    stage is run: the centres follow the frame from where they were, each keeping its colour's place."""
    pts, weight = _histogram(lab, mask)
    if start is not None and len(start) <= len(pts):
        centres, stages = np.asarray(start, np.float64), _ANNEAL[-1:]
    else:
        k = int(max(1, min(k, len(pts))))
        centres, stages = _initial_centres(pts, weight, k), _ANNEAL
    w = _LAB_WEIGHT.astype(np.float64)
    a, c = pts * w, centres * w
    for temperature in stages:
        for _ in range(_ROUNDS):
            d2 = (a * a).sum(1)[:, None] - 2.0 * a @ c.T + (c * c).sum(1)[None, :]
            d2 -= d2.min(axis=1, keepdims=True)
            r = np.exp(-d2 / temperature) * weight[:, None]
            r /= np.maximum(r.sum(axis=1, keepdims=True), 1e-300) / weight[:, None]
            mass = r.sum(0)
            moved = (r.T @ a) / np.maximum(mass, 1e-12)[:, None]
            c = np.where(mass[:, None] > 1e-9, moved, c)
    return (c / w).astype(np.float32)


def fit_palette(lab: np.ndarray, k: int, palette_rgb: np.ndarray, pull: float, saturation: float,
                mask: Optional[np.ndarray] = None, steady: Optional[PaletteSteadier] = None,
                key: str = "") -> PaletteFit:
    """Cluster the image in L*a*b* and pull each centre toward its nearest palette colours (a soft nearest: where
    two palette colours are nearly as near, the pull goes halfway to each, so it never jumps between them). `steady`
    (a clip's frames) carries the clusters of the layer `key` from frame to frame."""
    if steady is None:
        raw = _kmeans_lab(lab, k, mask)
    else:
        raw = steady(key, lambda start: _kmeans_lab(lab, k, mask, start))
    pal = rgb_to_lab(palette_rgb.reshape(1, -1, 3)).reshape(-1, 3)
    # Nearest palette colour by chroma first (hue identity), lightness second.
    d = ((raw[:, None, 1:] - pal[None, :, 1:]) ** 2).sum(-1) + 0.3 * (raw[:, None, 0] - pal[None, :, 0]) ** 2
    d = d - d.min(axis=1, keepdims=True)
    p = np.exp(-d / 5.0)  # squared Lab units: hard except within a few units of a tie
    near = (p / p.sum(axis=1, keepdims=True)) @ pal
    centers = raw.copy()
    centers[:, 1:] = raw[:, 1:] * (1.0 - pull) + near[:, 1:] * pull
    centers[:, 0] = raw[:, 0] * (1.0 - 0.4 * pull) + near[:, 0] * 0.4 * pull
    centers[:, 1:] *= 1.0 + (saturation - 1.0) * pull
    return PaletteFit(centers.astype(np.float32), raw.astype(np.float32))


# A background's cel borders are this many times softer than a person's. Its walls, skies and bokeh are gentle
# gradients, where a crisp border between two palette colours moves by several pixels for a grey level of noise (the
# audience's blue wall), and a flat region whose colour lies between two of them flips whole (the chandelier beside
# the two men, a strip of wall between their suits). At 4 the teacher holds 42.0 -> 42.8 dB median under noise, 35.8
# -> 36.9 under a one-pixel shift (tools/teacher_stability.py; worst 38.0 / 32.8 -> 38.3 / 33.4); the bands over a
# wall become soft shading, the people's crisp cels stand out from it. 8 gains 0.1-0.2 dB more.
BACKGROUND_SOFTNESS = 4.0


SOFT_ASSIGN_ROWS = 65536  # pixels per block of soft_assign (its (rows, k) logits stay in the cache)


def soft_assign(lab: np.ndarray, fit: PaletteFit, softness: float) -> np.ndarray:
    """Render each pixel as a softmax blend of the fitted centres (by distance to the raw centres), for each pixel's
    own colour (issue 14). It was looked up on a grid of colours (0.8 L*, 1.5 a*b* units) by the nearest cell: at the
    crisp borders of a person's cels the blend turns over within less than a cell, so a colour near a cell's edge took
    the cell's blend, up to 44 L*a*b* units from its own, and a grey level of noise moved a whole region of one colour
    (the audience's blue shirt) into the next cell and the next cel (the teacher under noise, the audience 39.3 -> 40.0
    dB at 512 px, docs/PERFORMANCE.md). Each pixel's logits are one product with the centres (the squared distance's
    own term |x|^2 is the same for all of a pixel's centres and leaves the softmax), in blocks of SOFT_ASSIGN_ROWS;
    faster than the lookup was (its np.unique sorted every pixel)."""
    h, w = lab.shape[:2]
    x = lab.reshape(-1, 3).astype(np.float32, copy=False)
    wts = _LAB_WEIGHT.astype(np.float64)  # the fit's own weighting of lightness against chroma
    raw = fit.raw_lab.astype(np.float64)
    soft = max(1e-3, float(softness))
    # -|x - c|^2_w / soft = (2 x.w c - |c|^2_w) / soft - |x|^2_w / soft, the last term the same for every centre;
    # centred on the centres' mean so that the terms stay small in float32.
    mid = raw.mean(axis=0)
    c = raw - mid
    m = (2.0 / soft) * (c * wts).T  # (3, k)
    b = -((c * c * wts).sum(axis=1) / soft) - mid @ m  # (k,): the centring folded into the offset
    m, b = m.astype(np.float32), b.astype(np.float32)
    # The centres' colours and a column of ones: one product gives the blend's sum and its weights' sum.
    ends = np.concatenate([fit.centers_lab.astype(np.float32), np.ones((len(raw), 1), np.float32)], axis=1)
    out = np.empty((len(x), 3), np.float32)
    for i in range(0, len(x), SOFT_ASSIGN_ROWS):
        logits = x[i:i + SOFT_ASSIGN_ROWS] @ m
        logits += b
        logits -= cv2.reduce(logits, 1, cv2.REDUCE_MAX)  # the nearest centre at 0: exp cannot overflow
        np.exp(logits, out=logits)
        blend = logits @ ends
        out[i:i + SOFT_ASSIGN_ROWS] = blend[:, :3] / blend[:, 3:]
    return out.reshape(h, w, 3)


def colorize(img: np.ndarray, color: float, palette_rgb: np.ndarray, *, saturation: float = 1.0, k: int = 12,
             mask: Optional[np.ndarray] = None, steady: Optional[PaletteSteadier] = None, key: str = "",
             soft: float = 1.0) -> np.ndarray:
    """Quantise toward a limited palette: 0 keeps photo colours, 1 gives k flat palette-pulled colours. `steady`,
    `key`: a clip's clusters carried (fit_palette). `soft` widens the blend between neighbouring colours (the cel
    borders) by that factor: BACKGROUND_SOFTNESS for a background."""
    c = float(np.clip(color, 0.0, 1.0))
    if c <= 0.0:
        return img.astype(np.float32, copy=True)
    lab = rgb_to_lab(img)
    fit = fit_palette(lab, k, palette_rgb, pull=c, saturation=saturation, mask=mask, steady=steady, key=key)
    # Softness shrinks with the factor: from soft gradients to crisp cel borders (in squared Lab units).
    quant = soft_assign(lab, fit, softness=(40.0 * (1.0 - c) ** 2 + 6.0) * soft)
    out_lab = lab * (1.0 - c) + quant * c
    return lab_to_rgb(out_lab)


# --------------------------------------------------------------------------------------------- line
def _remove_small(binary: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


CLUTTER_WINDOW = 40.0  # px at scale 1: the window in which the spacing of the lines is measured
CLUTTER_SPACING = 0.1  # a stroke's radius is at most this share of the spacing of the lines around it
CLUTTER_MIN_RADIUS = 0.6  # px at scale 1: the thinnest stroke


def shrink_by(x: np.ndarray, q: int) -> np.ndarray:
    """x area-averaged down by the whole factor q (the last rows and columns that do not fill a q x q block are left
    out). A whole factor takes OpenCV's per-block path; its general INTER_AREA path sums rows in an order that
    depends on how its threads split the frame, so a fractional float image came out different in its last bits
    from run to run (the pipelined stream's frames differed from the sequential ones)."""
    h, w = x.shape[:2]
    hq, wq = max(1, h // q), max(1, w // q)
    if hq * q > h or wq * q > w:  # smaller than one block: a plain mean
        return cv2.resize(x, (wq, hq), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(x[:hq * q, :wq * q], (wq, hq), interpolation=cv2.INTER_AREA)


def box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """The mean over a k x k window (reflected at the border), each output its own sum: cv2.blur and cv2.boxFilter
    keep a running sum down each stripe of rows, so a float image's result depends in its last bits on where
    OpenCV's threads split the rows (the pipelined stream's frames differed from the sequential ones)."""
    kernel = np.full(k, 1.0 / k, np.float32)
    return cv2.sepFilter2D(x, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def clutter_cap(centerline: np.ndarray, scale: float) -> np.ndarray:
    """The widest stroke radius (px) each pixel allows: a share of the mean spacing of the lines around it (window
    area over line length in `CLUTTER_WINDOW`; `centerline` is the line length per pixel, a binary centre line or the
    continuous ink's fractional one). A portrait's few contours keep their full width; a crowd, foliage or a
    patterned shirt, where lines lie a few pixels apart, is drawn with fine lines instead of merging into black worms
    (noir's 5-px strokes over a crowd of 37-px faces). Measured at a quarter of the resolution, then resized back."""
    h, w = centerline.shape
    q = 4
    small = shrink_by(centerline.astype(np.float32), q)
    k = max(3, int(round(CLUTTER_WINDOW * scale / q)) | 1)
    density = box_mean(small, k)  # line pixels per pixel = 1 / spacing
    cap = cv2.max(cv2.divide(CLUTTER_SPACING, cv2.max(density, 1e-3)), CLUTTER_MIN_RADIUS * scale)
    return cv2.resize(cap, (w, h), interpolation=cv2.INTER_LINEAR)


INK_WORK_SCALE = 1.34  # image_scale at most at which the ink is placed (1024 px; 720p and 1080p at half size)
INK_SIGMA = 1.0  # px: the Gaussian on the smoothed grey before its derivatives (the line's position is sub-pixel)
INK_WEAK = (0.3, 0.45)  # an edge is weak between these shares of the threshold gradient (Canny's low: 0.45)
INK_STRONG = (0.75, 1.05)  # ... and strong between these (Canny's high: 1)
INK_COHERENCE = (0.05, 0.3)  # ... and between these coherences of the gradients around it (lines, not texture)
INK_PICKY = np.array([0.25, 0.3])  # added to those for `min_length` 120 (backgrounds)
INK_EVEN = 2.0  # px at scale 1: the half-width of the window over which a line's strength is averaged
INK_HAIRLINE = 0.5  # px: the thinnest stroke's radius (a 1-px line; fainter lines fade instead)
INK_FAINT = (0.1, 0.35)  # a line fades in between these strengths (above, it only thickens)
INK_HAZE = 0.1  # alpha under this is not drawn (the rest is stretched back to [0, 1])
INK_LOUD = (1.3, 1.9)  # in quiet regions (skin) only gradients between these shares of the threshold and above ink
INK_RUN = 0.15  # the window (Gaussian sigma) in which a line's length is felt, per px of `min_length`
INK_SHORT = (0.25, 0.5)  # a line fades in between these shares of a long line's length in that window
INK_DEFOCUS = (1.5, 3.0)  # px at scale 1: a background's line fades out as its edge's defocus blur grows over these
INK_REBLUR = (1.0, 4.0)  # px: the two Gaussians whose gradient ratio measures an edge's blur (_sharpness)
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_SQUARE = np.ones((3, 3), np.uint8)


def _ramp(x: np.ndarray, e0: float, e1: float) -> np.ndarray:
    """0 below e0, 1 above e1, linear between, for a float32 array, in OpenCV calls."""
    k = 1.0 / max(e1 - e0, 1e-6)
    return clip_unit(cv2.addWeighted(x, k, x, 0.0, -e0 * k), inplace=True)


def _wide_blur(x: np.ndarray, sigma: float, q: int = 4) -> np.ndarray:
    """A Gaussian blur of a wide sigma, at 1/q of the resolution (area-averaged down, linearly back up): the same
    smooth field to a few percent, in a fraction of the time. q is halved until the sigma spans two of its pixels
    (a person's line length at 960 x 540, sigma 6, at half size: 5 -> ~1 ms); at full size under 2 px."""
    h, w = x.shape
    while q > 1 and sigma < 2.0 * q:  # at least two of its pixels to the sigma
        q //= 2
    if q == 1:
        return cv2.GaussianBlur(x, (0, 0), sigma)
    small = shrink_by(x, q)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / q), (w, h), interpolation=cv2.INTER_LINEAR)


def coherence(gxx: np.ndarray, gyy: np.ndarray, gxy: np.ndarray, sigma: float) -> np.ndarray:
    """How much the gradients within `sigma` px agree in direction, in [0, 1] (the structure tensor's
    (l1 - l2) / (l1 + l2)): near 1 along a contour, low in hair, foliage or gravel. `gxx`, `gyy`, `gxy`: the
    gradient's products gx², gy², gx gy at full resolution. Measured at a quarter of the resolution (it is a smooth
    field), then resized back."""
    h, w = gxx.shape
    q = 4
    jxx, jyy, jxy = (cv2.GaussianBlur(shrink_by(p, q), (0, 0), max(0.5, sigma / q)) for p in (gxx, gyy, gxy))
    diff = cv2.subtract(jxx, jyy)
    spread = np.sqrt(cv2.add(cv2.multiply(diff, diff), cv2.multiply(jxy, jxy, scale=4.0)))
    coh = cv2.divide(spread, cv2.add(cv2.add(jxx, jyy), 1e-3))
    return cv2.resize(coh, (w, h), interpolation=cv2.INTER_LINEAR)


def thicken(thin: np.ndarray, extra: np.ndarray, top: int) -> np.ndarray:
    """Grey dilation of a thin line's alpha by a per-pixel radius `extra` (px, continuous): discs grown one pixel at
    a time (cross and square in turn: octagons), interpolated between whole radii, so a stroke's width is a smooth
    function of `extra`. `top`: the largest whole radius needed."""
    out, prev = thin, thin
    for k in range(1, top + 1):
        cur = cv2.dilate(prev, _CROSS if k % 2 else _SQUARE)
        share = clip_unit(cv2.subtract(extra, float(k - 1)), inplace=True)  # 0 up to radius k - 1, 1 from radius k
        out = cv2.add(out, cv2.multiply(share, cv2.subtract(cur, prev)))
        prev = cur
    return out


PERSON_MIN_LENGTH = 40.0  # px at image_scale 1: the shortest contour inked on a person (ink_lines' default) ...
BACKGROUND_MIN_LENGTH = 120.0  # ... and on a background: only long contours (no gravel, leaves or ripples)
OUTLINE_ALPHA = 0.9  # the person's silhouette (mask_outline) is inked at this alpha, over everything else
# How quiet a person's hair is in its contours (ink_lines' quiet): its own strands (compose.hair_shading) are drawn
# instead, and only its loudest edges ink. At 0.7 a crown's parting and short hair were a maze of short black
# strokes (noir's most); fully quiet, the hair reads as its tones and strands (docs/PERFORMANCE.md, eighteenth session).
HAIR_QUIET = 1.0


def ink_lines(img: np.ndarray, line: float, weight: float = 1.0, quiet: Optional[Union[np.ndarray, Callable]] = None,
              min_length: float = PERSON_MIN_LENGTH, sample: int = 1,
              region: Optional[tuple[Union[np.ndarray, Callable], float]] = None) -> np.ndarray:
    """Ink alpha in [0, 1] for contours: more and thicker lines as `line` grows.

    Contours are the centre lines of the edges of an edge-preserving smoothed luminance (where its second
    derivative across the edge is zero, Canny's criterion), placed to a fraction of a pixel and drawn as
    anti-aliased strokes. Nothing is decided by a hard threshold: a line fades in with its gradient (against a
    threshold from the image's own gradients, so dim photos get lines too) and with the coherence of the gradients
    around it (long contours, not hair, foliage or gravel: the coherence window grows with `min_length`), so a grey
    level of noise or a one-pixel shift of the photo moves the ink by a little, never a stroke at once (issue 14;
    tools/teacher_stability.py). `quiet` (mask in [0, 1]) marks regions where only strong edges may draw (skin: no
    wrinkles or pores); it may be a function giving it, called once the gradients are measured (the realtime step
    finds the hair meanwhile). `img` is float RGB in [0, 1] or uint8 RGB (the same lines). `sample` > 1 takes the
    threshold from every sample-th pixel in each direction (the realtime path: the threshold barely moves). A
    background's lines (a `min_length` over PERSON_MIN_LENGTH, fully at BACKGROUND_MIN_LENGTH) fade where the photo's
    edge is out of focus (`_sharpness`, `_focus`): bokeh is painted soft, not scribbled.

    `region` = (mask in [0, 1], length[, line]): a person within its background, inked in one pass as the teacher
    inks the two layers apart (the realtime step, realtime.student). Where the mask is 1 the lines are
    `ink_lines(img, line, weight, quiet, length)`'s (`line` defaults to the call's), to float rounding; where it is
    0 those of `ink_lines(img, <the call's line>, weight, None, min_length)`: the background's, the quiet left to
    the person and its threshold ranking the background's own gradients (with the quiet's, the faces and skin that
    draw no lines pulled the threshold down and the background scribbled; issue 14); blended between. The mask may
    be a function giving it (or None: no region, the plain call), called once the edges are measured: the realtime
    step segments the person meanwhile. The ridge the strokes are centred on is the quiet gradients' in both (a
    slowly varying quiet moves it by a small fraction of a pixel).
    """
    l = float(np.clip(line, 0.0, 1.0))
    h, w = img.shape[:2]
    if l <= 0.0:
        return np.zeros((h, w), np.float32)
    # Lines come from a fixed, smoothed image, so they stay clean whatever the texture factor.
    u8 = img if img.dtype == np.uint8 else to_u8(img)
    halvings = ink_halvings(img.shape)
    if callable(quiet):
        quiet = _region_mask(quiet, halvings)
    elif quiet is not None:
        quiet = clip_unit(np.asarray(quiet, np.float32))
    if region is not None:
        region = (_region_mask(region[0], halvings), float(region[1]),
                  l if len(region) < 3 else float(np.clip(region[2], 0.0, 1.0)))
    if not halvings:
        alpha = _ink(u8, l, weight, quiet, min_length, sample, region)
    else:  # a large frame: the strokes (several px wide here) are placed at half its size (or less), resized back
        small = u8
        for _ in range(halvings):  # Gaussian pyramid steps: each output pixel its own sum, whatever the threads
            small = cv2.pyrDown(small)
            quiet = cv2.pyrDown(quiet) if isinstance(quiet, np.ndarray) else quiet
        alpha = cv2.resize(_ink(small, l, weight, quiet, min_length, sample, region), (w, h),
                           interpolation=cv2.INTER_LINEAR)
    fade = float(smoothstep(0.0, 0.3, l))
    return alpha if fade == 1.0 else cv2.multiply(alpha, fade)


def _region_mask(mask, halvings: int) -> Callable[[], Optional[np.ndarray]]:
    """`ink_lines`' region or quiet mask (an array, or a function giving one or None) as a function giving it at
    the size the lines are placed, float32 in [0, 1]."""
    def get() -> Optional[np.ndarray]:
        m = mask() if callable(mask) else mask
        if m is None:
            return None
        m = clip_unit(np.asarray(m, np.float32))
        for _ in range(halvings):
            m = cv2.pyrDown(m)
        return m

    return get


def _threshold(mag: np.ndarray, line: float, sample: int) -> float:
    """The gradient magnitude at which an edge is a full line, for line factor `line`: the top share of the
    gradients (from 1.5 % to 12 % as the factor grows), never under an absolute floor, which keeps soft regions
    (out-of-focus backgrounds, water, skin) free of scribbles (the gradients of the INK_SIGMA-blurred grey are about
    0.72 of the unblurred grey's on the shared photos). From every sample-th pixel in each direction."""
    share = 0.015 + 0.105 * line ** 1.5
    floor = (150.0 - 90.0 * line) * 0.72
    return max(floor, float(np.percentile(mag[::sample, ::sample], 100.0 * (1.0 - share))))


def _edge_ramps(mag: np.ndarray, high: float, quiet: Optional[np.ndarray]) -> tuple:
    """(weak, strong, keep): how far each pixel's gradient is a weak and a strong edge against the threshold
    `high` (Canny's low and high, made soft), and where `quiet` is (None: everywhere kept) how far it is loud enough
    to draw there."""
    weak = _ramp(mag, INK_WEAK[0] * high, INK_WEAK[1] * high)
    strong = _ramp(mag, INK_STRONG[0] * high, INK_STRONG[1] * high)
    keep = None
    if quiet is not None:  # on skin only loud edges count
        keep = cv2.subtract(1.0, cv2.multiply(quiet, cv2.subtract(1.0, _ramp(mag, *(np.array(INK_LOUD) * high)))))
    return weak, strong, keep


def _picky(min_length: float) -> float:
    """How much lines of at least `min_length` are a background's, in [0, 1]: 0 for a person's (PERSON_MIN_LENGTH),
    1 for a background's (BACKGROUND_MIN_LENGTH). Backgrounds ask for more coherent lines, drawn only in focus."""
    return float(np.clip((min_length - PERSON_MIN_LENGTH) / (BACKGROUND_MIN_LENGTH - PERSON_MIN_LENGTH), 0.0, 1.0))


def _line_strength(edges: tuple, min_length: float, scale: float, sharp: Optional[np.ndarray] = None) -> np.ndarray:
    """How strongly each edge pixel draws for lines of at least `min_length` (`_ink`'s measure; `edges` = its weak
    and strong edge ramps, the quiet regions' keep (or None), the tent across the lines, and the gradient's
    products): the ramps times the coherence of the gradients around it, and the strong line length along it. With
    `sharp` (`_sharpness`) the ramps are faded where the edge is out of focus as far as the lines are a background's
    (`_focus`) before the length is measured, so a line is drawn where enough of it is in focus: faded after, the
    few pixels of a blurred edge that measure sharp were drawn as specks (noir on the medium-skin portrait's bokeh)."""
    weak, strong, keep, tent, gxx, gyy, gxy = edges
    picky = _picky(min_length)
    coh = _ramp(coherence(gxx, gyy, gxy, 0.05 * min_length * scale), *(np.array(INK_COHERENCE) + picky * INK_PICKY))
    weak, strong = cv2.multiply(weak, coh), cv2.multiply(strong, coh)
    if keep is not None:
        weak, strong = cv2.multiply(weak, keep), cv2.multiply(strong, keep)
    focus = _focus(sharp, picky, scale) if sharp is not None else None
    if focus is not None:  # before the lines' length is felt: a blurred edge's few pixels that measure sharp (thin
        weak, strong = cv2.multiply(weak, focus), cv2.multiply(strong, focus)  # twigs in bokeh) are no line alone
    sigma = INK_RUN * min_length * scale
    run = _wide_blur(cv2.multiply(tent, strong), sigma)  # strong line length in the window
    return cv2.multiply(weak, _ramp(run, *(np.array(INK_SHORT) / (np.sqrt(2 * np.pi) * sigma))))


def _sharpness(grey: np.ndarray) -> np.ndarray:
    """Each edge pixel's R² (float32), the squared ratio of the photo's gradient magnitude under two Gaussians
    s1 < s2 (INK_REBLUR), which measures its defocus blur b: at a step edge blurred by b, R² = (b² + s2²) / (b² +
    s1²) (Zhuo and Sim, "Defocus map estimation from a single image", 2011): s2² / s1² where it is sharp, towards 1
    as b grows (`_blur_ratio`). Each magnitude is its 3x3 maximum, the edge's peak wherever the ink's ridge lies
    beside it. Blurred steps of sigma 1, 2, 3, 5 px measure b = 1.2, 2.0, 3.0, 4.9. The wide Gaussian's magnitude, a
    smooth field, is measured at half size (a Gaussian pyramid step, sigma 1 px, then the rest of s2); the fine one
    at full size (at half size the estimate moved with a pixel's phase: the hall's shift stability 35.2 -> 34.1 dB).
    On 8-bit blurs and integer Sobels, whose squares and sums are exact in float32: the same on every CPU. `grey`:
    the photo's grey, uint8 (not the edge-preserving smoothed one, which sharpens soft edges)."""
    s1, s2 = INK_REBLUR
    h, w = grey.shape[:2]

    def peak2(image: np.ndarray, sigma: float) -> np.ndarray:  # the squared gradient magnitude's 3x3 maximum
        b = cv2.GaussianBlur(image, (0, 0), sigma)
        gx, gy = cv2.Sobel(b, cv2.CV_16S, 1, 0, ksize=3), cv2.Sobel(b, cv2.CV_16S, 0, 1, ksize=3)
        return cv2.dilate(cv2.add(cv2.multiply(gx, gx, dtype=cv2.CV_32F), cv2.multiply(gy, gy, dtype=cv2.CV_32F)),
                          _SQUARE)

    fine = peak2(grey, s1)
    # pyrDown's 5-tap kernel is a Gaussian of sigma 1 px; the half-size pixels are 2 px, their gradients per 2 px
    coarse = cv2.resize(peak2(cv2.pyrDown(grey), float(np.sqrt(s2 * s2 - 1.0)) / 2.0), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    return cv2.divide(fine, cv2.max(cv2.multiply(coarse, 0.25), 1.0))


def _blur_ratio(b: float) -> float:
    """`_sharpness`' R² at an edge of defocus blur `b` px."""
    s1, s2 = INK_REBLUR
    return (b * b + s2 * s2) / (b * b + s1 * s1)


def _focus(sharp: np.ndarray, picky: float, scale: float) -> Optional[np.ndarray]:
    """How far each edge is in focus (`sharp`, `_sharpness`; 0 past the blur INK_DEFOCUS[1], 1 under INK_DEFOCUS[0])
    as far as the lines are a background's (`picky`, `_picky`): a factor in [1 - picky, 1], or None for a person's
    lines, which are never faded. A webtoon paints a defocused background soft: the contours of bokeh foliage were
    scribbles (noir on the medium-skin portrait)."""
    if picky <= 0.0:
        return None
    soft = _ramp(sharp, _blur_ratio(INK_DEFOCUS[1] * scale), _blur_ratio(INK_DEFOCUS[0] * scale))  # 0: blurred
    return cv2.addWeighted(soft, picky, soft, 0.0, 1.0 - picky)


def ink_halvings(shape: Sequence[int]) -> int:
    """How many times `ink_lines` halves a frame of `shape` (Gaussian pyramid steps) before it places the strokes:
    a large frame's strokes are several pixels wide, so they are placed at half its size (or less)."""
    h, w = shape[:2]
    halvings = 0
    while image_scale(shape) / 2 ** halvings > INK_WORK_SCALE and min(h, w) >> (halvings + 1) >= 64:
        halvings += 1
    return halvings


def _ink(u8: np.ndarray, l: float, weight: float, quiet: Optional[Union[np.ndarray, Callable]], min_length: float,
         sample: int, region: Optional[tuple[Callable, float, float]] = None) -> np.ndarray:
    """ink_lines at the frame's own size (`quiet` already float32 in [0, 1] or a `_region_mask`, `region` = (its
    mask as a `_region_mask`, length, line))."""
    scale = image_scale(u8.shape)
    # The smoother's weights come from the colour guide and it is linear in its source, so smoothing the grey
    # alone gives the grey of the smoothed colour image (to a grey level of rounding) in half the time.
    grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY)  # the photo's own, where its focus is measured (_sharpness)
    gray = global_smooth(u8, grey, 80.0 * scale * scale, 5.0)
    g = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), INK_SIGMA)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    loud = mag = gradient_magnitude(gx, gy)  # not cv2.magnitude: its last bit depends on the buffer's address
    quiet = quiet() if callable(quiet) else quiet
    if quiet is not None:
        mag = cv2.multiply(mag, cv2.addWeighted(quiet, -0.6, quiet, 0.0, 1.0))  # mag * (1 - 0.6 quiet)
    # Within a region the person's quiet lines; outside it the background's, where nothing is quiet.
    split = region is not None and quiet is not None
    high = _threshold(loud if split else mag, l, sample)
    # The distance (px) to the edge's centre line, the ridge of the gradient magnitude across the edge: the peak of a
    # parabola fitted to log(magnitude) along the gradient (-d/dn / d2/dn2), exact for a Gaussian-shaped ridge, so
    # the line is placed to a fraction of a pixel and moves continuously with the photo.
    logm = cv2.log(cv2.add(mag, 1.0))
    lx = cv2.Sobel(logm, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    ly = cv2.Sobel(logm, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    lxx = cv2.Sobel(logm, cv2.CV_32F, 2, 0, ksize=3, scale=0.25)
    lyy = cv2.Sobel(logm, cv2.CV_32F, 0, 2, ksize=3, scale=0.25)
    lxy = cv2.Sobel(logm, cv2.CV_32F, 1, 1, ksize=3, scale=0.25)
    # With n = (gx, gy) / |g|: d/dn = (lx gx + ly gy) / |g|, d2/dn2 = (lxx gx2 + 2 lxy gx gy + lyy gy2) / |g|2.
    gxx, gyy, gxy = cv2.multiply(gx, gx), cv2.multiply(gy, gy), cv2.multiply(gx, gy)
    slope = cv2.multiply(cv2.absdiff(cv2.add(cv2.multiply(lx, gx), cv2.multiply(ly, gy)), 0.0), mag)  # |d/dn| |g|2
    bend = cv2.add(cv2.add(cv2.multiply(lxx, gxx, scale=-1.0), cv2.multiply(lxy, gxy, scale=-2.0)),
                   cv2.multiply(lyy, gyy, scale=-1.0))  # -d2/dn2 |g|2, > 0 on a ridge
    dist = cv2.divide(slope, cv2.max(bend, cv2.addWeighted(gxx, 1e-3, gyy, 1e-3, 1e-6)))  # no 0 / 0 where flat
    # Hysteresis, made soft: an edge draws where it is at least weak (about INK_WEAK of the threshold) and where
    # enough strong edge (about the threshold) lies along lines within a window that grows with `min_length` (Canny
    # asks for a connected path to a strong pixel; a path flips with a grey level, a blurred measure does not).
    # The same measure drops dots and short dashes: a long line in the window counts 1, a dash a fraction.
    # Backgrounds (long contours only) ask for more coherent lines: no scribbles over foliage, bokeh or a crowd.
    # 1 - distance, whose sum across a line is 1 wherever the line lies
    tent = clip_unit(cv2.subtract(1.0, dist), inplace=True)
    ridge = (tent, gxx, gyy, gxy)
    # The background's (or, with no region, the only) lines, measured while a region's mask is made.
    edges = _edge_ramps(loud, high, None) if split else _edge_ramps(mag, high, quiet)
    sharp = _sharpness(grey) if _picky(min_length) > 0.0 else None  # a background's lines fade where it is blurred
    strength = _line_strength(edges + ridge, min_length, scale, sharp)
    mask = region[0]() if region is not None else None

    def stroke(line: float) -> float:  # the widest stroke's radius (px) at line factor `line`
        return (0.35 + 1.5 * line) * weight * scale

    radius = widest = stroke(l)
    fade = 1.0
    if region is not None and mask is None and split:  # no region after all: the plain call's quiet lines
        strength = _line_strength(_edge_ramps(mag, _threshold(mag, l, sample), quiet) + ridge, min_length, scale,
                                  sharp)
    elif mask is not None:
        own = region[2]
        if split or own != l:
            edges = _edge_ramps(mag, _threshold(mag, own, sample), quiet)
        inside = _line_strength(edges + ridge, region[1], scale)  # the person's: never faded for focus
        strength = cv2.add(strength, cv2.multiply(cv2.subtract(inside, strength), mask))
        if own != l:  # the person's stroke width, and its fade under a line factor of 0.3 (ink_lines' fade is l's)
            radius = cv2.addWeighted(mask, stroke(own) - radius, mask, 0.0, radius)
            widest = max(widest, stroke(own))
            fade = float(smoothstep(0.0, 0.3, own) / smoothstep(0.0, 0.3, l))
    # Along a line its strength is averaged over INK_EVEN px (weighted by the tent): a contour whose contrast varies
    # is drawn as one stroke, not dashes.
    even = 2 * int(round(INK_EVEN * scale)) + 1
    strength = cv2.divide(box_mean(cv2.multiply(tent, strength), even), cv2.add(box_mean(tent, even), 1e-3))
    centre = cv2.multiply(tent, strength)  # line length per pixel, for the spacing of the lines
    # A weaker line is a thinner stroke of the same ink (a pen's pressure), not a grey one: its radius goes with its
    # strength, and only the faintest fade out.
    r = cv2.max(cv2.multiply(cv2.min(clutter_cap(centre, scale), radius), strength), INK_HAIRLINE)  # per pixel
    # Anti-aliased coverage of a stroke of radius r (at most 1 px: the distance is exact near the ridge only), then
    # grown by the rest of the radius.
    near = cv2.min(r, 1.0)
    alpha = cv2.multiply(clip_unit(cv2.subtract(cv2.add(near, 0.5), dist), inplace=True), _ramp(strength, *INK_FAINT))
    alpha = thicken(alpha, cv2.subtract(r, near), int(np.ceil(max(0.0, widest - 1.0))))
    # No faint haze: what is under INK_HAZE of alpha (anti-aliasing tails, the faintest lines) is not drawn.
    alpha = _ramp(alpha, INK_HAZE, 1.0)
    return alpha if fade == 1.0 else cv2.multiply(alpha, cv2.addWeighted(mask, fade - 1.0, mask, 0.0, 1.0))


OUTLINE_ACROSS = 2.0  # px at scale 1 (1.5 at least): the photo is compared this far to each side of the silhouette
OUTLINE_EDGE = (8.0, 24.0)  # grey levels: the photo's change across the silhouette over which its outline inks in
OUTLINE_UNSURE = 0.5  # ... from this share of its ink, where the photo does not change across it
OUTLINE_FLAT = (4.0, 12.0)  # grey levels: ... the photo's change over OUTLINE_SNAP px, under which that share fades
OUTLINE_FLAT_EVEN = 6.0  # px at scale 1: ... evened along the border over this distance (13 x 13 box)
OUTLINE_SNAP = 4.0  # px at scale 1: the outline moves onto the photo's own edge within this reach of the mask's level
OUTLINE_SNAP_EVEN = 2.0  # px at scale 1: ... by as much as the border's pixels within this distance say (5 x 5 box)


def mask_outline(mask: np.ndarray, line: float, weight: float = 1.0, image: Optional[np.ndarray] = None
                 ) -> np.ndarray:
    """Ink along the border of a soft mask (the person's silhouette): a stroke centred on the (smoothed) mask's 0.5
    level, placed to a fraction of a pixel (`_level_tangents`), so that the outline moves as little as the level does
    when the photo changes invisibly, not by whole pixels (the noise it flipped was a quarter of the teacher's change
    on a four-person group: 37.0 -> 38.4 dB).

    With the photo (`image`, RGB) the outline is inked fully only where the photo changes across it (by OUTLINE_EDGE
    grey levels in any channel, OUTLINE_ACROSS px to each side), and at OUTLINE_UNSURE of it where it does not: there
    the silhouette is the segmenter's guess (a white coat on a white wall, a band of wall it took for hair), and its
    guess moves by a pixel or more when the photo moves by one (its 0.5 level moved > 1 px on a tenth of the group's
    silhouette, where the photo's own edge was 0.8 grey levels per px against 17 where it held). A confident line
    where the photo shows one, a lighter one where only the segmenter does, and none where the photo is flat within
    OUTLINE_SNAP px too (by OUTLINE_FLAT, evened along the border): a grey line across the group's white wall, whose
    place moved with the segmenter's guess (teacher under a shift there 32.0 -> 34.4 dB). And where the photo shows
    an edge within OUTLINE_SNAP px of the level, the line is drawn on that edge (as far as the photo's change over
    that reach says it is one, evened over OUTLINE_SNAP_EVEN px of the border): there the level still moved by a
    pixel where the photo moved by one, the photo's edge moves with it (teacher's worst under a shift 31.1 -> 32.0
    dB, the dancers 33.8 -> 35.0; the realtime step 27.04 -> 27.12 dB from its teacher)."""
    l = float(np.clip(line, 0.0, 1.0))
    if l <= 0.0:
        return np.zeros(mask.shape, np.float32)
    scale = image_scale(mask.shape)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(1.0, scale))
    inside = soft > 0.5
    border = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    border = _remove_small(border, int(30 * scale))
    if not border.any():
        return np.zeros(mask.shape, np.float32)
    # As much ink as when the stroke was grown from the ring of border pixels (itself a third of a pixel wider: 1.75,
    # 2.28, 4.47 px of ink per px of a circle's border at 384, 512 and 1024 px, now 1.87, 2.37, 4.30).
    radius = (0.5 + 1.6 * l) * weight * scale + 0.2
    by, bx = np.nonzero(border)  # in raster order: distanceTransformWithLabels' labels 1, 2, ...
    nx, ny, along, sloped = _level_tangents(soft, by, bx)
    sure = None
    if image is not None:
        # No change across the level -> OUTLINE_UNSURE, OUTLINE_EDGE[1] and more -> 1 (np.interp clamps) ...
        change, wide, edge = _photo_across(image, bx + along * nx, by + along * ny, nx, ny,
                                           max(1.5, OUTLINE_ACROSS * scale), max(3.0, OUTLINE_SNAP * scale))
        # ... and where the photo is flat over the wider reach too (a band of wall the segmenter took for hair, a
        # white coat on a white wall), none: nothing there says where a line would be. Evened along the border, so
        # the guess fades in and out over a stretch, not in dashes.
        flat = np.interp(wide, OUTLINE_FLAT, (0.0, 1.0)).astype(np.float32)
        floor = OUTLINE_UNSURE * _even_along(by, bx, flat, 2 * int(round(OUTLINE_FLAT_EVEN * scale)) + 1)
        sure = (floor + (1.0 - floor) * np.interp(change, OUTLINE_EDGE, (0.0, 1.0))).astype(np.float32)
        sure[~sloped] = 1.0
        # Onto the photo's own edge where it has one (the level moved by a pixel or more where the photo did by one):
        # as far as the photo's change over the wider reach says it is there, evened along the border.
        snap = np.interp(wide, OUTLINE_EDGE, (0.0, 1.0)).astype(np.float32) * sloped
        along = along + _even_along(by, bx, snap * edge, 2 * int(round(OUTLINE_SNAP_EVEN * scale)) + 1)
    # In the border's box only (the ink reaches radius + 0.5 px beyond the line, `reach` px from its border pixel at
    # most): the distance to the nearest border pixel and which it is.
    reach = float(np.abs(along).max())
    pad = int(np.ceil(radius + reach)) + 2
    h, w = mask.shape
    y0, x0 = max(0, int(by[0]) - pad), max(0, int(bx.min()) - pad)
    y1, x1 = min(h, int(by[-1]) + pad + 1), min(w, int(bx.max()) + pad + 1)
    dist, labels = cv2.distanceTransformWithLabels((~border[y0:y1, x0:x1]).astype(np.uint8), cv2.DIST_L2,
                                                   cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    # Within the stroke's reach: the distance to the line's tangent at the nearest border pixel. Further out, or
    # where the mask is flat, the distance to the border pixels' centres (whole-pixel steps; no ink reaches there).
    qy, qx = np.nonzero(dist <= radius + 0.5 + max(1.0, reach))
    k = labels[qy, qx] - 1
    tangent = np.abs((qx + x0 - bx[k]) * nx[k] + (qy + y0 - by[k]) * ny[k] - along[k])
    dist[qy, qx] = np.where(sloped[k], tangent, dist[qy, qx])
    alpha = np.zeros(mask.shape, np.float32)
    alpha[y0:y1, x0:x1] = cv2.multiply(clip_unit(cv2.subtract(float(radius + 0.5), dist), inplace=True),
                                        float(smoothstep(0.0, 0.3, l)))
    if sure is not None:
        alpha[qy + y0, qx + x0] *= sure[k]
    return alpha


def _level_tangents(soft: np.ndarray, by: np.ndarray, bx: np.ndarray) -> tuple:
    """At each border pixel p = (bx, by) of `soft`'s 0.5 level (above 0.5, a neighbour at or below): the unit
    gradient (nx, ny, pointing inward; central differences), where along it the level lies (between -1.5 and 0 px:
    where the line from p to the point a pixel outward crosses 0.5, so it moves by as much as the level moves) and
    whether the mask has a slope there at all."""
    h, w = soft.shape
    gx = (soft[by, np.minimum(bx + 1, w - 1)] - soft[by, np.maximum(bx - 1, 0)]) * 0.5
    gy = (soft[np.minimum(by + 1, h - 1), bx] - soft[np.maximum(by - 1, 0), bx]) * 0.5
    slope = np.hypot(gx, gy)
    sloped = slope > 1e-3
    slope = np.where(sloped, slope, 1.0)
    nx, ny = gx / slope, gy / slope
    here = soft[by, bx]
    drop = here - bilinear_at(soft, bx - nx, by - ny).astype(np.float32)  # to the point a pixel outward
    along = -(here - 0.5) / np.where(drop > 1e-3, drop, slope)
    return nx, ny, np.clip(along, -1.5, 0.0), sloped


def _photo_across(image: np.ndarray, bx: np.ndarray, by: np.ndarray, nx: np.ndarray, ny: np.ndarray,
                  reach: float, wide: float) -> tuple:
    """The photo (RGB, uint8 or float in [0, 1]) across a line through the points (bx, by) with normals (nx, ny), on
    its 3 x 3 means (bilinear, at those points only): how much it changes (the largest channel difference, in grey
    levels) between `reach` px to each side and between `wide` px to each side, and where along the normal its edge
    lies within `wide` px: the centre of its rise along that change's direction (the mean offset, in px, of the
    half-pixel steps that go that way, weighted by their rise), a position that moves with the photo's edge by a
    fraction of a pixel when the photo changes by a grey level."""
    h, w = image.shape[:2]
    x0, y0 = int(max(0, bx.min() - wide - 2)), int(max(0, by.min() - wide - 2))
    x1, y1 = int(min(w, bx.max() + wide + 3)), int(min(h, by.max() + wide + 3))
    crop = image[y0:y1, x0:x1]
    near = cv2.blur(crop if crop.dtype == np.uint8 else to_u8(crop), (3, 3)).astype(np.float32)
    # -reach, +reach and the profile's half-pixel steps, read in one remap (bilinear to 1/32 px): points x steps x RGB
    steps = np.linspace(-wide, wide, 2 * int(np.ceil(wide / 0.5)) + 1, dtype=np.float32)
    at = np.concatenate([np.float32([-reach, reach]), steps])
    px = (bx - x0).astype(np.float32)[:, None] + nx.astype(np.float32)[:, None] * at
    py = (by - y0).astype(np.float32)[:, None] + ny.astype(np.float32)[:, None] * at
    read = cv2.remap(near, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(len(bx), len(at), -1)
    change = np.abs(read[:, 1] - read[:, 0]).max(axis=1)
    profile = read[:, 2:]
    across = profile[:, -1] - profile[:, 0]
    direction = across / np.maximum(np.linalg.norm(across, axis=1, keepdims=True), 1e-3)
    rise = np.maximum(np.diff(np.einsum('psc,pc->ps', profile, direction), axis=1), 0.0)
    centres = (steps[1:] + steps[:-1]) * 0.5
    edge = (rise * centres).sum(1) / np.maximum(rise.sum(1), 1e-3)
    return change, np.abs(across).max(axis=1), edge.astype(np.float32)


def _even_along(by: np.ndarray, bx: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """Values at a border's pixels (by, bx) averaged over the border pixels within a length x length box of each: along
    a one-pixel border, over about `length` px of it."""
    if length <= 1 or len(values) == 0:
        return values
    y0, x0 = int(by.min()), int(bx.min())
    shape = (int(by.max()) - y0 + 1, int(bx.max()) - x0 + 1)
    both = np.zeros(shape + (2,), np.float32)  # the values and a count of the pixels that hold one
    both[by - y0, bx - x0] = np.stack([values, np.ones_like(values)], axis=1)
    both = box_mean(both, length)[by - y0, bx - x0]  # (not cv2.blur: its float sums vary with OpenCV's threads)
    return both[:, 0] / both[:, 1]


INK_BELOW = 8.0  # L*: ink is at least this much darker than the darkest fill it crosses (ink_over)


@lru_cache(maxsize=16)
def _ink_by_fill(color: tuple) -> np.ndarray:
    """(256, 3) float32 RGB: the ink drawn over a darkest fill of each grey level (ink_over). The grey level is taken
    as sRGB-encoded luminance, its L* as CIE's; where the line colour is not INK_BELOW darker, the ink takes that
    lightness with the line's hue, its chroma scaled with it; elsewhere the line colour itself."""
    c = np.asarray(color, np.float32)
    lab_c = rgb_to_lab(c[None, None])[0, 0]
    g = np.arange(256, dtype=np.float32) / 255.0
    y = np.where(g <= 0.04045, g / 12.92, ((g + 0.055) / 1.055) ** 2.4)
    fill_L = np.where(y > 216 / 24389, 116.0 * np.cbrt(y) - 16.0, y * 24389 / 27)
    Lk = np.clip(np.minimum(lab_c[0], fill_L - INK_BELOW), 0.0, None).astype(np.float32)
    t = Lk / max(float(lab_c[0]), 1e-3)
    lab = np.stack([Lk, lab_c[1] * t, lab_c[2] * t], axis=-1).astype(np.float32)
    out = np.clip(lab_to_rgb(lab[None])[0], 0.0, 1.0).astype(np.float32)
    out[Lk >= lab_c[0]] = c
    return out


def ink_over(img: np.ndarray, alpha: np.ndarray, color_rgb: np.ndarray) -> np.ndarray:
    """apply_ink with ink never lighter than what it crosses: where the line colour is not INK_BELOW darker than the
    darkest fill within the stroke's reach (grey levels, eroded), the ink takes that lightness (its hue kept, its
    chroma scaled with it; `_ink_by_fill`). A light line colour (pastel's soft brown, L* 35) drawn round black hair
    is a light halo that erases the head's outline; an artist inks it darker there. float32 RGB in [0, 1] or uint8,
    as apply_ink, which blends the ink image it makes; two OpenCV passes and a table lookup more than the plain
    colour (the realtime path's contours and strokes use it too)."""
    c = np.asarray(color_rgb, np.float32).reshape(3)
    table = _ink_by_fill(tuple(float(v) for v in c))
    if img.dtype == np.uint8:
        img = np.ascontiguousarray(img)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    else:
        img = np.ascontiguousarray(img, dtype=np.float32)
        grey = cv2.convertScaleAbs(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), alpha=255.0)
    k = 2 * int(np.ceil(2.0 * max(1.0, image_scale(img.shape)))) + 1
    floor = cv2.erode(grey, np.ones((k, k), np.uint8))
    if img.dtype == np.uint8:  # three one-channel lookups merged: 2.0 ms per 1080p frame, one of three channels 3.5
        lut = np.clip(table * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(256, 3)
        return apply_ink(img, alpha, cv2.merge([cv2.LUT(floor, np.ascontiguousarray(lut[:, c])) for c in range(3)]))
    return apply_ink(img, alpha, cv2.LUT(cv2.merge([floor, floor, floor]), table.reshape(256, 1, 3)))


def apply_ink(img: np.ndarray, alpha: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """img (1 - alpha) + ink alpha, (H, W, 3): float32 in [0, 1] in and out, or uint8 in and out (the realtime
    path: a quarter of the memory traffic). `ink`: one RGB colour in [0, 1], or an ink image of img's size and type
    (ink_over's). One OpenCV pass (cv2.blendLinear): 1 ms per 720p frame where numpy's expression took 14 (the same
    values to 1e-5)."""
    img = np.ascontiguousarray(img) if img.dtype == np.uint8 else np.ascontiguousarray(img, dtype=np.float32)
    if np.ndim(ink) == 1:
        color = np.asarray(ink, np.float32)
        if img.dtype == np.uint8:
            color = np.clip(color * 255.0 + 0.5, 0, 255).astype(np.uint8)
        ink = np.empty_like(img)
        ink[:] = color.reshape(1, 1, 3)
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    return cv2.blendLinear(img, np.ascontiguousarray(ink, dtype=img.dtype), 1.0 - a, a)


@dataclass
class LayerSettings:
    line: float
    texture: float
    color: float


class Cartoonizer:
    """One layer of the classic teacher: abstraction → palette colours → ink, for a character."""

    name = "classic"

    def __init__(self, character: Character):
        self.character = character
        self.palette = character.palette_rgb()
        self.line_rgb = hex_to_rgb(character.line_color)[0]

    def shade(self, img: np.ndarray, s: LayerSettings, *, k: int = 12, mask: Optional[np.ndarray] = None,
              steady: Optional[PaletteSteadier] = None, key: str = "", soft: float = 1.0) -> np.ndarray:
        flat = abstract(img, s.texture)
        return colorize(flat, s.color, self.palette, saturation=self.character.shading.saturation, k=k, mask=mask,
                        steady=steady, key=key, soft=soft)

    def lines(self, img: np.ndarray, s: LayerSettings, quiet: Optional[np.ndarray] = None,
              min_length: float = PERSON_MIN_LENGTH) -> np.ndarray:
        return ink_lines(img, s.line, self.character.line_weight, quiet=quiet, min_length=min_length)
