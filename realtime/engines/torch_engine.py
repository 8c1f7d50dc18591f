"""The torch engine: the student module itself (CPU float32; CUDA float16 when a GPU is present)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchEngine:
    name = "torch"

    def __init__(self, student_dir: Path, device: str = "auto"):
        import torch

        from studio.models.student_unet import StudentUNet

        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = StudentUNet.from_pretrained(student_dir).to(self.device, self.dtype).eval()
        self.multiple = self.model.config.multiple

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        from . import padded

        return padded(self._run, image, factors, self.multiple)

    def _run(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, self.dtype)
            f = torch.from_numpy(np.ascontiguousarray(factors)).to(self.device, self.dtype)
            return self.model(x, f).float().cpu().numpy()
