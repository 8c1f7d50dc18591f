"""How close a student is to its teacher on pairs: PSNR and SSIM on whole held-out pairs, overall and per factor
setting (training.distill's validation and report; training.colour_map's)."""
from __future__ import annotations

import numpy as np

FACTOR_BINS = ((0.0, 0.34, "low"), (0.34, 0.67, "mid"), (0.67, 1.01, "high"))


def fidelity_by_factor(factors: list, ps: list, ss: list) -> dict:
    """Mean PSNR/SSIM per factor and setting (low/mid/high thirds): where the student follows the teacher."""
    from .datasets import PairDataset

    out: dict = {}
    f = np.array(factors, np.float32).reshape(-1, len(PairDataset.FACTORS))
    for j, name in enumerate(PairDataset.FACTORS):
        for lo, hi, label in FACTOR_BINS:
            sel = (f[:, j] >= lo) & (f[:, j] < hi)
            if sel.any():
                out[f"{name}_{label}"] = {"psnr": float(np.mean(np.array(ps)[sel])),
                                          "ssim": float(np.mean(np.array(ss)[sel])), "n": int(sel.sum())}
    return out


def whole_pair(dataset, i: int, multiple: int):
    """Pair `i` whole, cropped to a multiple of `multiple`: the photo as a (1, 3, H, W) tensor, the teacher's target
    as float32 (H, W, 3) and the factors as a (1, k) tensor."""
    import torch

    x, y, f = dataset[i]
    h, w = (x.shape[0] // multiple) * multiple, (x.shape[1] // multiple) * multiple
    xt = torch.from_numpy(np.ascontiguousarray(x[:h, :w])).permute(2, 0, 1)[None]
    return xt, np.ascontiguousarray(y[:h, :w]), torch.from_numpy(f)[None]


def evaluate(model, dataset, device, multiple: int) -> dict:
    """PSNR and SSIM of the student against the teacher on whole held-out pairs, overall and per factor."""
    import torch

    from .losses import psnr, ssim

    model.eval()
    ps, ss, fs, ident = [], [], [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            xt, y, ft = whole_pair(dataset, i, multiple)
            fs.append(ft[0].numpy())
            xt, ft = xt.to(device), ft.to(device)
            yt = torch.from_numpy(y).permute(2, 0, 1)[None].to(device)
            pred = model(xt, ft)
            ps.append(float(psnr(pred, yt)))
            ss.append(float(ssim(pred, yt)))
            ident.append((float(psnr(xt, yt)), float(ssim(xt, yt))))  # the photo itself: the floor to beat
    model.train()
    mean = lambda v: float(np.mean(v)) if len(v) else float("nan")  # noqa: E731
    return {"psnr": mean(ps), "ssim": mean(ss), "n": len(ps), "identity_psnr": mean([p for p, _ in ident]),
            "identity_ssim": mean([s for _, s in ident]), "by_factor": fidelity_by_factor(fs, ps, ss)}
