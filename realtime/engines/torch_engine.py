"""The torch engine: the student module itself. CPU: float32, run eagerly. CUDA: float16, replayed as a CUDA graph.

A realtime stream sends frames of one shape, so on a GPU the whole forward pass is captured once as a CUDA graph
(static input and output tensors) and replayed per frame: one launch instead of one per kernel. A new input
shape re-captures. `engine.mode` says which path runs ("cuda-graph" or "eager").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import padded


class TorchEngine:
    name = "torch"

    def __init__(self, student_dir: Path, device: str = "auto"):
        import torch

        from studio.models.student_unet import StudentUNet

        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        on_gpu = self.device.startswith("cuda")
        self.dtype = torch.float16 if on_gpu else torch.float32
        self.precision = "fp16" if on_gpu else "fp32"
        self.mode = "cuda-graph" if on_gpu else "eager"
        self.model = StudentUNet.from_pretrained(student_dir).to(self.device, self.dtype).eval()
        self.multiple = self.model.config.multiple
        self._graph = None  # (input shapes, CUDAGraph, static image, static factors, static output)

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        return padded(self._run if self.mode == "eager" else self._replay, image, factors, self.multiple)

    def _run(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, self.dtype)
            f = torch.from_numpy(np.ascontiguousarray(factors)).to(self.device, self.dtype)
            return self.model(x, f).float().cpu().numpy()

    def _replay(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(image, np.float32))
        f = torch.from_numpy(np.ascontiguousarray(factors, np.float32))
        with torch.no_grad(), torch.cuda.device(self.device):
            if self._graph is None or self._graph[0] != (x.shape, f.shape):
                self._graph = None  # release the old graph's memory pool before capturing the next
                self._graph = ((x.shape, f.shape), *self._capture(x, f))
            _, graph, static_x, static_f, static_y = self._graph
            static_x.copy_(x)  # host float32 -> device float16, into the addresses the graph reads
            static_f.copy_(f)
            graph.replay()
            return static_y.float().cpu().numpy()  # copied out before the next replay overwrites it

    def _capture(self, x, f):
        import torch

        static_x, static_f = x.to(self.device, self.dtype), f.to(self.device, self.dtype)
        # Warm up on a side stream first (cuDNN picks its kernels, lazy allocations happen), as torch's CUDA graph
        # docs require: none of that may happen during capture.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.model(static_x, static_f)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: a stream's pre/post threads may use CUDA while this thread captures
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_y = self.model(static_x, static_f)
        return graph, static_x, static_f, static_y
