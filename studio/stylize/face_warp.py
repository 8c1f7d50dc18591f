"""Warp each face toward a character's geometry: eye size and position, face width, jaw and chin.

For every face with a mesh, sparse targets are set on the landmarks (eye contours scaled about the eye
centre and moved up or down, the face oval pulled in at the cheeks and jaw, the chin lengthened or
shortened) while the nose, mouth and a ring outside the face stay put. A thin-plate spline through those
points gives a smooth backward displacement field over the face's neighbourhood; it is zero at the ring,
so nothing tears at the face border. The same field warps the image, the masks and (by fixed-point
inversion) the landmarks, so later stages see the warped geometry.

    field = warp_field(shape, faces, character.geometry, strength=0.6)
    warped = field.apply(image); faces = field.move_faces(faces)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import cv2
import numpy as np

from ..characters import Geometry
from ..imageops import bilinear_at
from ..perception.faces import FACE_OVAL, LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
from ..types import Box, Face

NOSE_TIP, UPPER_LIP, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT, CHIN = 1, 13, 14, 291, 61, 152
LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER = 473, 468  # the person's left / right (refined mesh only)
# px of face width: the warp fades in over these. On a smaller face the mesh is off by a few pixels (a crowd's
# 42-px face in glasses had its mouth placed 5 px to the side), which is more than the reshaping it would draw, and
# warping by it made that face unrecognisable (dlib no longer found it in pastel); a background face keeps its shape.
WARP_FACE_PX = (40.0, 64.0)


@dataclass
class WarpField:
    """A backward map: output pixel (x, y) samples the input at (x + dx, y + dy). Not to be changed once made.
    `box` (y0, y1, x0, x1), where known, holds every non-zero displacement (warp_field: the faces' neighbourhoods),
    so a 1080p frame's field is not scanned to find them."""

    dx: np.ndarray
    dy: np.ndarray
    box: Optional[tuple[int, int, int, int]] = None

    def _moved_box(self) -> Optional[tuple[int, int, int, int]]:
        if self.box is not None:
            y0, y1, x0, x1 = self.box
            return self.box if y1 > y0 and x1 > x0 else None
        moved = (self.dx != 0) | (self.dy != 0)
        rows = np.flatnonzero(moved.any(axis=1))
        if rows.size == 0:
            return None
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        cols = np.flatnonzero(moved[y0:y1].any(axis=0))
        return y0, y1, int(cols[0]), int(cols[-1]) + 1

    @functools.cached_property
    def is_identity(self) -> bool:
        # Asked for every point set moved (landmarks and keypoints of each face): scanning a 1080p field each time
        # added up on a crowd, so it is scanned once, and only in the box where one is known.
        box = self._moved_box()
        if box is None:
            return True
        y0, y1, x0, x1 = box
        return not (np.any(self.dx[y0:y1, x0:x1]) or np.any(self.dy[y0:y1, x0:x1]))

    def apply(self, img: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The image warped. Only the box around the non-zero displacements is resampled (faces are small in a
        1080p frame); the rest is copied, which is what resampling it at zero displacement gives (and so does
        resampling the zero displacements inside the box: the same image, bit for bit, whichever box)."""
        box = self._moved_box()
        if box is None:
            return img
        y0, y1, x0, x1 = box
        # Each pixel's own column and row added by broadcasting: one pass per map, no coordinate grids (a 1080p
        # close-up's box: 11.5 -> 10.8 ms a frame, the remap itself ~7; the same sums, bit for bit)
        mx = self.dx[y0:y1, x0:x1] + np.arange(x0, x1, dtype=np.float32)[None, :]
        my = self.dy[y0:y1, x0:x1] + np.arange(y0, y1, dtype=np.float32)[:, None]
        out = img.copy()
        out[y0:y1, x0:x1] = cv2.remap(img, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
        return out

    def forward(self, pts: np.ndarray, iterations: int = 12) -> np.ndarray:
        """Where input points land in the output: solve x + D(x) = p by fixed-point iteration."""
        if self.is_identity or pts is None:
            return pts
        p = pts.astype(np.float32)
        x = p.copy()
        for _ in range(iterations):
            d = np.stack([bilinear_at(self.dx, x[:, 0], x[:, 1]), bilinear_at(self.dy, x[:, 0], x[:, 1])], axis=1)
            x = p - d
        return x

    def move_faces(self, faces: Sequence[Face]) -> list[Face]:
        """The faces with their landmarks, keypoints and boxes where the warp takes them. Every face's points go
        through `forward` together: one fixed-point iteration for the frame, not one per face."""
        if self.is_identity:
            return list(faces)
        points = [p for f in faces for p in (f.landmarks, f.keypoints) if p is not None]
        if not points:
            return list(faces)
        moved = iter(np.split(self.forward(np.concatenate(points)), np.cumsum([len(p) for p in points])[:-1]))
        out = []
        for f in faces:
            lm = next(moved) if f.landmarks is not None else None
            kp = next(moved) if f.keypoints is not None else None
            box = f.box
            if lm is not None:  # keep the detector's box convention; move its edges as the mesh's bounds moved
                d0, d1 = lm.min(axis=0) - f.landmarks.min(axis=0), lm.max(axis=0) - f.landmarks.max(axis=0)
                box = Box(box.x0 + float(d0[0]), box.y0 + float(d0[1]), box.x1 + float(d1[0]), box.y1 + float(d1[1]))
            out.append(replace(f, landmarks=lm, keypoints=kp, box=box))
        return out


def face_targets(lm: np.ndarray, geo: Geometry, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Sparse (source, target) landmark pairs for one face at the given strength."""
    s = float(np.clip(strength, 0.0, 1.0))
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    eye_l, eye_r = lm[list(LEFT_EYE)], lm[list(RIGHT_EYE)]
    eye_w = 0.5 * (np.ptp(eye_l[:, 0]) + np.ptp(eye_r[:, 0]))
    lift = np.array([0.0, geo.eye_height * eye_w * s], np.float32)
    k = 1.0 + (geo.eye_scale - 1.0) * s
    for eye, brow in ((eye_l, lm[list(LEFT_BROW)]), (eye_r, lm[list(RIGHT_BROW)])):
        c = eye.mean(axis=0)
        src.append(eye)
        dst.append(c + (eye - c) * k + lift)
        # The brow rides with the eye's growth (so the lid does not crush into it).
        up = np.array([0.0, -(k - 1.0) * 0.5 * np.ptp(eye[:, 1]) * 1.4], np.float32)
        src.append(brow)
        dst.append(brow + up + lift)
    # Face oval: cheeks take face_width, below the mouth the jaw factor, the chin moves along the face axis.
    oval = lm[list(FACE_OVAL)]
    center_x = float(oval[:, 0].mean())
    eye_y = float(np.concatenate([eye_l, eye_r])[:, 1].mean())
    mouth_y = float(lm[[UPPER_LIP, LOWER_LIP], 1].mean())
    chin = lm[CHIN]
    down = np.float32(1.0) if chin[1] >= eye_y else np.float32(-1.0)
    tgt = oval.copy()
    for i, p in enumerate(oval):
        if (p[1] - eye_y) * down < 0:  # forehead: leave it
            continue
        below_mouth = np.clip((p[1] - mouth_y) * down / max(1.0, abs(chin[1] - mouth_y)), 0.0, 1.0)
        fw = geo.face_width * (1.0 - below_mouth) + geo.jaw * below_mouth
        # At eye level the (growing) eyes sit next to the contour: narrowing starts below them, or the
        # two would squeeze the skin between them.
        below_eyes = np.clip((p[1] - eye_y) * down / max(1.0, 0.5 * abs(mouth_y - eye_y)), 0.0, 1.0)
        fw = 1.0 + (fw - 1.0) * s * below_eyes * below_eyes * (3 - 2 * below_eyes)
        tgt[i, 0] = center_x + (p[0] - center_x) * fw
        tgt[i, 1] = p[1] + (geo.chin - 1.0) * s * below_mouth ** 2 * (chin[1] - mouth_y)
    src.append(oval)
    dst.append(tgt)
    still = lm[[NOSE_TIP, UPPER_LIP, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT]]
    src.append(still)
    dst.append(still)
    return np.concatenate(src).astype(np.float32), np.concatenate(dst).astype(np.float32)


@functools.cache
def blas_on_one_thread() -> None:
    """numpy's and scipy's OpenBLAS run their products on the calling thread, from now on, for the process.

    The spline's products are small (a face's grid by about a hundred points); OpenBLAS split them over its own
    threads, which then spin with sched_yield for a while after each product. In the realtime stream that took
    the other core from the stages: 18,000-43,000 yields and 70-130 ms of kernel time a 1080p frame, the
    pipelined stream 5.4-6.4 -> 6.9-7.6 fps with one thread (docs/PERFORMANCE.md, "Cores the stream was losing").
    Products are split by rows, so their results are the same on one thread or several. Set once (cached; a second
    setting by a concurrent first call is the same), not per call: limits are process-wide, and restoring them
    around each call would race between the stream's threads and the studio's users."""
    import importlib

    from threadpoolctl import ThreadpoolController

    importlib.import_module("scipy.linalg")  # loads scipy's own OpenBLAS, so the limit reaches it too
    ThreadpoolController().select(internal_api="openblas").limit(limits=1)


def warp_field(shape: Sequence[int], faces: Sequence[Face], geo: Geometry, strength: float,
               step: int = 4, across: Optional[int] = None) -> WarpField:
    """Backward displacement field (H, W) x2 for all faces with landmarks, each by `strength` faded in over face
    widths `WARP_FACE_PX`. The spline is evaluated every `step` px and resized up; with `across`, a large face's
    neighbourhood gets at most about that many points across (a coarser step: the realtime path, where a 1080p
    close-up's spline cost 40-55 ms at step 4 and 12-20 at step 8, the warped frame 56-62 dB from step 4's)."""
    from scipy.interpolate import RBFInterpolator

    blas_on_one_thread()
    h, w = shape[:2]
    dx = np.zeros((h, w), np.float32)
    dy = np.zeros((h, w), np.float32)
    box = [h, 0, w, 0]  # y0, y1, x0, x1: where the faces' neighbourhoods are written
    if strength <= 0.0:
        return WarpField(dx, dy, (0, 0, 0, 0))
    for face in faces:
        lm = face.landmarks
        if not face.has_mesh:
            continue
        t = float(np.clip((face.box.width - WARP_FACE_PX[0]) / (WARP_FACE_PX[1] - WARP_FACE_PX[0]), 0.0, 1.0))
        if t <= 0.0:
            continue
        src, dst = face_targets(lm[:, :2], geo, strength * t * t * (3.0 - 2.0 * t))
        # Zero-displacement ring well outside the face keeps the warp local and seamless.
        cx, cy = lm[list(FACE_OVAL)].mean(axis=0)
        rx = np.ptp(lm[list(FACE_OVAL), 0]) * 0.95
        ry = np.ptp(lm[list(FACE_OVAL), 1]) * 0.85
        ang = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        ring = np.stack([cx + rx * np.cos(ang), cy + ry * np.sin(ang)], axis=1).astype(np.float32)
        ctrl_dst = np.concatenate([dst, ring])
        disp = np.concatenate([src - dst, np.zeros_like(ring)])
        x0, x1 = int(max(0, np.floor(cx - rx))), int(min(w, np.ceil(cx + rx) + 1))
        y0, y1 = int(max(0, np.floor(cy - ry))), int(min(h, np.ceil(cy + ry) + 1))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        st = step if across is None else max(step, int(np.ceil(max(x1 - x0, y1 - y0) / across)))
        gx = np.arange(x0, x1, st, dtype=np.float32)
        gy = np.arange(y0, y1, st, dtype=np.float32)
        grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        rbf = RBFInterpolator(ctrl_dst, disp, kernel="thin_plate_spline", smoothing=1.0)
        d = rbf(grid).reshape(len(gy), len(gx), 2).astype(np.float32)
        # Fade to zero on the ellipse so the field is exactly zero outside the neighbourhood.
        ex = (grid[:, 0] - cx) / rx
        ey = (grid[:, 1] - cy) / ry
        fade = np.clip(1.0 - (ex * ex + ey * ey), 0.0, 1.0).reshape(len(gy), len(gx)) ** 0.5
        fade = fade * fade * (3 - 2 * fade)
        d *= fade[..., None]
        if st != step:  # each pixel reads the grid where its points are (a coarse step's half-step offset is px):
            # pixel (x, y) reads the grid at (x / st, y / st), an affine map (no per-pixel maps to build)
            full = cv2.warpAffine(d, np.float32([[1.0 / st, 0, 0], [0, 1.0 / st, 0]]), (x1 - x0, y1 - y0),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        else:  # resize maps grid corners to pixel edges; that half-step offset is below a pixel at step=4
            full = cv2.resize(d, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) if (len(gx), len(gy)) != (
                x1 - x0, y1 - y0) else d
        dx[y0:y1, x0:x1] += full[..., 0]
        dy[y0:y1, x0:x1] += full[..., 1]
        box = [min(box[0], y0), max(box[1], y1), min(box[2], x0), max(box[3], x1)]
    return WarpField(dx, dy, tuple(box) if box[1] > box[0] else (0, 0, 0, 0))
