"""Losses for distillation that need no downloaded weights: L1, image-gradient (edges) and SSIM."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical differences: keeps ink lines and cel edges sharp."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(pred), dx(target)) + F.l1_loss(dy(pred), dy(target))


def _gauss(size: int = 11, sigma: float = 1.5, channels: int = 3, device=None) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(ax ** 2) / (2 * sigma ** 2))
    g = (g / g.sum())
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean structural similarity (Wang et al. 2004, 11x11 Gaussian window) of NCHW images."""
    c = pred.shape[1]
    w = _gauss(channels=c, device=pred.device).to(pred.dtype)
    mu_p = F.conv2d(pred, w, groups=c)
    mu_t = F.conv2d(target, w, groups=c)
    s_pp = F.conv2d(pred * pred, w, groups=c) - mu_p ** 2
    s_tt = F.conv2d(target * target, w, groups=c) - mu_t ** 2
    s_pt = F.conv2d(pred * target, w, groups=c) - mu_p * mu_t
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    m = ((2 * mu_p * mu_t + c1) * (2 * s_pt + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (s_pp + s_tt + c2))
    return m.mean()


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = F.mse_loss(pred, target)
    return 10 * torch.log10(1.0 / torch.clamp(mse, min=1e-10))


def distill_loss(pred: torch.Tensor, target: torch.Tensor, w_grad: float = 0.5, w_ssim: float = 0.2) -> torch.Tensor:
    return F.l1_loss(pred, target) + w_grad * gradient_loss(pred, target) + w_ssim * (1 - ssim(pred, target))
