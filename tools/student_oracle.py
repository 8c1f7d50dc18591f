"""What resolution can a realtime student work at? An oracle for issue 14: the teacher's own output, brought down to
1/2 or 1/4 of the frame and back up, (a) bilinearly and (b) by a fast guided filter with the frame as the guide
(Wu et al., CVPR 2018: the linear coefficients fitted at low resolution between the small frame and the small
output, upsampled and applied to the full frame; grey or colour guide). PSNR against the full-resolution teacher on
the held-out photos of tools/realtime_fidelity.py. A student that matched the teacher at that resolution would score
this; the shipped students score the "student" column of realtime_fidelity.py. Prints a Markdown table.

    .venv/bin/python tools/student_oracle.py                      # classic, 512 px, line/texture/color 0.6, warp 0
    .venv/bin/python tools/student_oracle.py --character noir --side 384
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tools"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from realtime_fidelity import PHOTOS, psnr  # noqa: E402

from studio import StylizeParams, Stylizer, load_config  # noqa: E402
from studio.io import load_image  # noqa: E402


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_up(small_frame: np.ndarray, small_out: np.ndarray, frame: np.ndarray, r: int, eps: float,
              colour: bool) -> np.ndarray:
    """The fast guided filter's upsampling (float RGB in [0, 1]): out = A * guide + b per output channel, A and b
    fitted in (2r+1)² windows of the small images, box-smoothed, resized to the frame. `colour`: the guide is the
    frame's RGB (a 3-vector A), else its grey."""
    H, W = frame.shape[:2]
    guide_s = small_frame if colour else small_frame.mean(2, keepdims=True)
    guide = frame if colour else frame.mean(2, keepdims=True)
    n = guide_s.shape[2]
    mI = np.stack([_box(guide_s[..., i], r) for i in range(n)], -1)
    S = np.empty(guide_s.shape[:2] + (n, n), np.float32)
    for i in range(n):
        for j in range(n):
            S[..., i, j] = _box(guide_s[..., i] * guide_s[..., j], r) - mI[..., i] * mI[..., j]
    Sinv = np.linalg.inv(S + eps * np.eye(n, dtype=np.float32))
    out = np.empty_like(frame)
    for c in range(3):
        mp = _box(small_out[..., c], r)
        cov = np.stack([_box(guide_s[..., i] * small_out[..., c], r) - mI[..., i] * mp for i in range(n)], -1)
        A = np.einsum("hwij,hwj->hwi", Sinv, cov)
        b = mp - (A * mI).sum(-1)
        A = np.stack([cv2.resize(_box(A[..., i], r), (W, H), interpolation=cv2.INTER_LINEAR) for i in range(n)], -1)
        out[..., c] = (A * guide).sum(-1) + cv2.resize(_box(b, r), (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--character", default="classic")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--media", default=str(REPO.parent / "shared" / "data"))
    a = ap.parse_args(argv)
    st = Stylizer(load_config())
    rows = []
    for name in PHOTOS:
        img = load_image(Path(a.media) / "images" / name)
        k = a.side / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * k) // 16 * 16, round(img.shape[0] * k) // 16 * 16),
                         interpolation=cv2.INTER_AREA)
        teacher = st(img, StylizeParams(character=a.character, line=0.6, texture=0.6, color=0.6, warp=0.0)).image
        T, frame = teacher.astype(np.float32) / 255, img.astype(np.float32) / 255
        H, W = T.shape[:2]
        res = {"the photo itself": psnr(img, teacher)}
        for q in (2, 4):
            size = (W // q, H // q)
            T_s, F_s = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (T, frame))
            res[f"1/{q}, bilinear"] = psnr(cv2.resize(T_s, (W, H), interpolation=cv2.INTER_LINEAR) * 255, teacher)
            for colour in (False, True):
                for r, eps in ((2, 1e-3), (4, 1e-3), (2, 1e-2)):
                    up = guided_up(F_s, T_s, frame, r, eps, colour)
                    guide = "colour" if colour else "grey"
                    res[f"1/{q}, guided ({guide}, r {r}, eps {eps:g})"] = psnr(up * 255, teacher)
        rows.append((Path(name).stem, res))
    print(f"PSNR against the {a.character} teacher (dB), {a.side} px, line/texture/color 0.6, warp 0")
    print("| teacher brought back from | " + " | ".join(n for n, _ in rows) + " | mean |")
    print("|---|" + "---|" * (len(rows) + 1))
    for key in rows[0][1]:
        v = [r[key] for _, r in rows]
        print(f"| {key} | " + " | ".join(f"{x:.2f}" for x in v) + f" | **{np.mean(v):.2f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
