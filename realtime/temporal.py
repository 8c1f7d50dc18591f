"""Temporal consistency for stylised video: flow-guided blending, and the flicker metric that measures it.

A per-frame stylizer flickers: it answers the sensor noise and small motions of each frame a little differently.
`TemporalBlender` carries the previous stylised frame along the optical flow of the *input* frames and blends it
into the new one where the flow is trustworthy:

    blend = TemporalBlender(strength=0.8)
    for frame, stylised in ...:                       # RGB uint8, same size
        out = blend(frame, stylised)

- Flow: OpenCV's DIS optical flow (medium preset, sparser patches) from the current input frame back to the
  previous one, on grey frames scaled to at most `flow_side` px, then upsampled to the frame.
- Confidence, per pixel: the previous *input* frame warped by the same flow must match the current input (a
  Gaussian in the grey-level error), and the flow must stay inside the image. Where the flow is wrong (fast motion,
  occlusion, something appearing) the new stylised frame is kept as it is: no ghost trails. Confidence falls to 1/e
  at `tolerance` grey levels plus `edge_tolerance` times the local gradient, so on an edge the check reads as a
  misalignment in pixels and on flat ground as a grey-level error.
- Output = stylised + strength × confidence × (warped previous output − stylised): stable regions average over
  about 1 / (1 − strength) frames; moving ones follow the flow.
- A cut starts again from the new frame: the colour content changes more than `CUT_THRESHOLD` (PySceneDetect's
  content score), or less than `cut_confidence` of the frame is confident.

`flicker(inputs, outputs)` is the warping error of Lai et al. (ECCV 2018, "Learning blind video temporal
consistency"): each output frame against the previous output warped by the flow of the inputs, over the pixels
where that flow is forward-backward consistent and inside the image. Its flow is DeepFlow (not the blender's own),
the flow Ruder et al. (2016) made Lai et al.'s consistency masks with; the input clip's own warping error is the
scale. Pairs across a cut are not scored. Why these flows and settings, with the measurements:
docs/PERFORMANCE.md, "Flicker".
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from studio.color import shrink
from studio.imageops import gradient_magnitude


def _grey(frame: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The frame in grey, scaled down so its long side is at most `side`; and the scale used."""
    return shrink(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame, side)


# PySceneDetect's ContentDetector default: the mean absolute change of hue, saturation and value (OpenCV's 8-bit
# HSV) between two frames, averaged over the three. On the shared clips ordinary frame pairs give 0.4-8 (a moving
# crowd 5-8), the stage clip's cut 56, and the dark close-up after it 14-19.
CUT_THRESHOLD = 27.0


def _hsv_small(frame: np.ndarray, side: int = 256) -> np.ndarray:
    """The frame in OpenCV's 8-bit HSV, every step-th pixel so the long side is about `side`: a mean change needs
    no filtering (0.1 ms at 1080p, where resizing with INTER_AREA took 3.5)."""
    step = -(-max(frame.shape[:2]) // side)
    frame = np.ascontiguousarray(frame[::step, ::step])
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2HSV).astype(np.float32)


def _content_delta(a_hsv: np.ndarray, b_hsv: np.ndarray) -> float:
    """PySceneDetect's content score between two `_hsv_small` frames; above CUT_THRESHOLD it is a cut."""
    if a_hsv.shape != b_hsv.shape:
        return float("inf")
    return float(cv2.absdiff(a_hsv, b_hsv).mean())


class CutDetector:
    """Tells a cut in a clip: `detector(frame)` is True where the frame is unlike the one before it by PySceneDetect's
    content score (above CUT_THRESHOLD; a change of size is one too), False for the first. Frames in order; `reset()`
    forgets the last. The blender, the teacher path's carried light and palette (realtime.renderers.SteadyClip) and
    the flicker metric each start again at the same frames."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._last: Optional[np.ndarray] = None

    def __call__(self, frame: np.ndarray) -> bool:
        hsv = _hsv_small(frame)
        cut = self._last is not None and _content_delta(self._last, hsv) > CUT_THRESHOLD
        self._last = hsv
        return cut


def _gradient(grey: np.ndarray) -> np.ndarray:
    """|∇| of a grey uint8 frame in grey levels per pixel (a 3x3 Sobel sums 8 times the slope)."""
    g = grey.astype(np.float32)
    # Not cv2.magnitude, whose last bit depends on where its output lands (studio.imageops).
    return gradient_magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)) / 8.0


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """Each pixel's own (x, y), float32 (h, w, 2): remap's one-map form."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = np.dstack([gx, gy])
    grid.flags.writeable = False
    return grid


def _sample_maps(flow: np.ndarray) -> np.ndarray:
    """The remap map that reads, for each pixel, where the flow points."""
    return flow + _grid(*flow.shape[:2])


@functools.lru_cache(maxsize=4)
def _upsampling_grid(hl: int, wl: int, h: int, w: int) -> tuple:
    """For a flow field of (hl, wl) brought to (h, w) by a linear resize: the low-resolution grid whose resize is each
    full-size pixel's own (x, y) (linear interpolation keeps an affine function exactly), and the corrections,
    (x by column, y by row) over the few columns and rows at the border, where the resize clamps instead.
    `_upsampled_maps` adds the grid before the resize: one pass over the full-size maps less."""
    u = (np.arange(wl, dtype=np.float64) + 0.5) * (w / wl) - 0.5
    v = (np.arange(hl, dtype=np.float64) + 0.5) * (h / hl) - 0.5
    low = np.dstack(np.meshgrid(u, v)).astype(np.float32)
    low.flags.writeable = False
    # The corrections along each axis: the resize of a 1-D ramp against the exact coordinates.
    cx = np.arange(w, dtype=np.float32) - cv2.resize(low[:1, :, 0], (w, 1), interpolation=cv2.INTER_LINEAR)[0]
    cy = np.arange(h, dtype=np.float32) - cv2.resize(low[:, :1, 1], (1, h), interpolation=cv2.INTER_LINEAR)[:, 0]
    bands = []
    for c, n in ((cx, w), (cy, h)):
        off = np.flatnonzero(np.abs(c) > 1e-3)  # the border; inside, the differences are float rounding
        head = int(off[off < n // 2].max()) + 1 if (off < n // 2).any() else 0
        tail = n - int(off[off >= n // 2].min()) if (off >= n // 2).any() else 0
        bands.append((head, tail, c))
    return low, bands


def _upsampled_maps(flow: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    """The full-size remap map of a flow computed at `scale` of the frame (in its own pixels): the flow in full-size
    pixels plus each pixel's own (x, y), resized once from the flow's size."""
    w, h = size
    low, ((x0, x1, cx), (y0, y1, cy)) = _upsampling_grid(flow.shape[0], flow.shape[1], h, w)
    maps = cv2.resize(cv2.scaleAdd(flow, 1.0 / scale, low), (w, h), interpolation=cv2.INTER_LINEAR)
    if x0:
        maps[:, :x0, 0] += cx[:x0]
    if x1:
        maps[:, w - x1:, 0] += cx[w - x1:]
    if y0:
        maps[:y0, :, 1] += cy[:y0, None]
    if y1:
        maps[h - y1:, :, 1] += cy[h - y1:, None]
    return maps


def warp_back(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` (the previous frame) carried onto the current frame by `flow` (current → previous, in pixels of
    `image`'s size); outside pixels replicate the border."""
    return _carried(image, _sample_maps(flow))


def _carried(image: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """`image` read where `maps` (remap's one-map form) points, bilinearly; outside pixels replicate the border."""
    return cv2.remap(image, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _inside(flow: np.ndarray) -> np.ndarray:
    m = _sample_maps(flow)
    h, w = flow.shape[:2]
    return (m[..., 0] >= 0) & (m[..., 0] <= w - 1) & (m[..., 1] >= 0) & (m[..., 1] <= h - 1)


DIS_STRIDE = 4  # px between the blender's flow patches (DIS's medium preset: 3; docs/PERFORMANCE.md)
DIS_DESCENT = 16  # gradient descent steps per patch (medium: 25)


class TemporalBlender:
    """Flow-guided blending of consecutive stylised frames (see the module doc). Not thread safe: one per
    stream, fed in frame order; `reset()` at a cut or a new video."""

    def __init__(self, strength: float = 0.8, flow_side: int = 480, tolerance: float = 10.0,
                 edge_tolerance: float = 0.5, cut_confidence: float = 0.25):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        self.strength, self.flow_side = float(strength), int(flow_side)
        self.tolerance, self.edge_tolerance = float(tolerance), float(edge_tolerance)
        self.cut_confidence = float(cut_confidence)
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # Patches every DIS_STRIDE px and DIS_DESCENT steps each instead of the preset's 3 and 25: a third less
        # time (13 -> 9 ms at 1080p on the 2-core Xeon), the blended clips' flicker within 1 % either way.
        self._dis.setPatchStride(DIS_STRIDE)
        self._dis.setGradientDescentIterations(DIS_DESCENT)
        self.confidence: Optional[np.ndarray] = None  # the last frame's mean confidence map (flow scale), for tests
        self.reset()

    def reset(self) -> None:
        self._grey = None
        self._cut = CutDetector()
        self._out = None
        self.cuts = 0  # cuts seen since the last reset

    def __call__(self, frame: np.ndarray, stylised: np.ndarray) -> np.ndarray:
        if frame.shape[:2] != stylised.shape[:2]:
            raise ValueError(f"frame {frame.shape[:2]} and stylised {stylised.shape[:2]} differ in size")
        grey, s = _grey(frame, self.flow_side)
        cut = self._cut(frame)
        prev_grey, prev_out = self._grey, self._out
        self._grey = grey
        if self.strength == 0.0 or prev_grey is None or prev_grey.shape != grey.shape \
                or prev_out.shape != stylised.shape:
            self._out = stylised
            return stylised
        if cut:  # a cut: nothing of the last shot may show
            self.cuts += 1
            self._out = stylised
            return stylised
        flow = self._dis.calc(grey, prev_grey, None)  # current -> previous, in flow pixels
        err = cv2.absdiff(grey, warp_back(prev_grey, flow)).astype(np.float32)
        err = cv2.GaussianBlur(err, (0, 0), 1.0)  # one noisy pixel does not decide
        tol = self.tolerance
        if self.edge_tolerance > 0:
            tol = tol + self.edge_tolerance * cv2.GaussianBlur(_gradient(grey), (0, 0), 1.0)
        conf = np.exp(-(err / tol) ** 2) * _inside(flow)
        self.confidence = conf
        if float(conf.mean()) < self.cut_confidence:  # everything moved: start again
            self.cuts += 1
            self._out = stylised
            return stylised
        h, w = stylised.shape[:2]
        weight = (self.strength * conf).astype(np.float32)
        if s < 1.0:  # scaled at the flow's size, then resized: passes less over the full frame
            maps = _upsampled_maps(flow, s, (w, h))
            weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            maps = _sample_maps(flow)
        carried = _carried(prev_out, maps)
        out = cv2.blendLinear(carried, stylised, weight, 1.0 - weight)
        self._out = out
        return out


# --------------------------------------------------------------------------------------------------- metric
@dataclass
class Flicker:
    """Warping error in grey levels (0-255) per pixel, averaged over frame pairs; `pairs` frame pairs scored,
    `coverage` the mean share of pixels whose flow was reliable, `cuts` pairs left out as cuts."""

    error: float
    pairs: int
    coverage: float
    cuts: int = 0  # frame pairs across a cut, not scored


def _deepflow():
    return cv2.optflow.createOptFlow_DeepFlow()


def flicker(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray], flow_side: int = 640,
            consistency: float = 1.0) -> Flicker:
    """Mean |O_t − warp(O_{t−1})| over reliable pixels (see the module doc). Flow is computed on `inputs` at a
    long side of `flow_side` px, both ways; a pixel counts when the forward-backward round trip returns within
    `consistency` px (of the flow scale) and stays inside the image. `outputs` are compared at full size. A pair
    across a cut (content score above CUT_THRESHOLD) is not scored, and counted in `cuts`."""
    return flickers(inputs, outputs, flow_side=flow_side, consistency=consistency)[0]


def flickers(inputs: Iterable[np.ndarray], *outputs: Iterable[np.ndarray], flow_side: int = 640,
             consistency: float = 1.0) -> list[Flicker]:
    """`flicker` of several output sequences of the same inputs, with the flow computed once (DeepFlow takes about
    0.2 s a direction at 640×360 on this 2-core machine)."""
    if not outputs:
        raise ValueError("flickers needs at least one output sequence")
    flow = _deepflow()
    total, pixels = [0.0] * len(outputs), 0
    cover, pairs, cuts = 0.0, 0, 0
    prev_g = None
    prev_o: tuple = ()
    cut = CutDetector()
    for frame, *outs in zip(inputs, *outputs):
        g, s = _grey(frame, flow_side)
        if cut(frame):
            cuts += 1
        elif prev_g is not None:
            back = flow.calc(g, prev_g, None)  # t -> t-1
            fwd = flow.calc(prev_g, g, None)  # t-1 -> t
            round_trip = back + warp_back(fwd, back)  # ~0 where both flows agree
            ok = (np.hypot(round_trip[..., 0], round_trip[..., 1]) < consistency) & _inside(back)
            h, w = frame.shape[:2]
            if s < 1.0:
                back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR) / s
                ok = cv2.resize(ok.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            for i, (out, prev) in enumerate(zip(outs, prev_o)):
                if out.shape[:2] != (h, w):
                    raise ValueError(f"output {i} is {out.shape[:2]}, its input {(h, w)}")
                diff = np.abs(out.astype(np.float32) - warp_back(prev, back).astype(np.float32))
                diff = diff.mean(axis=2) if diff.ndim == 3 else diff
                total[i] += float(diff[ok].sum())
            pixels += int(ok.sum())
            cover += float(ok.mean())
            pairs += 1
        prev_g, prev_o = g, tuple(outs)
    if pairs == 0:
        raise ValueError("flicker needs at least two frames of one shot")
    return [Flicker(error=t / max(pixels, 1), pairs=pairs, coverage=cover / pairs, cuts=cuts) for t in total]


def blend_all(frames: Sequence[np.ndarray], stylised: Sequence[np.ndarray], **kw) -> list[np.ndarray]:
    """Every stylised frame through one fresh TemporalBlender, in order."""
    blend = TemporalBlender(**kw)
    return [blend(f, o) for f, o in zip(frames, stylised)]
