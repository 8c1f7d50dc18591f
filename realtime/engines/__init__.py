"""Inference engines for a student, behind one registry: `torch`, `onnxruntime`, `tensorrt`.

    engine = load_engine("onnxruntime", "students/classic")
    out = engine(frames_nchw_float01, factors_nk)       # numpy in, numpy out
    engine.name, engine.device

- torch: the module itself; CPU float32, or CUDA float16 replayed as a CUDA graph (`engine.mode`).
- onnxruntime: the exported `student.onnx`; runs everywhere (TensorRT/CUDA providers when onnxruntime-gpu has them).
- tensorrt: the ONNX built into a TensorRT fp16 plan, cached in `<student>/engines/`; needs NVIDIA TensorRT 10
  and a CUDA GPU.

An engine that cannot run here raises EngineUnavailable saying why (a fallback is the caller's explicit
choice, visible in its result). Several engines can stay resident at once (e.g. face and background).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

ENGINES: dict[str, str] = {
    "torch": "realtime.engines.torch_engine:TorchEngine",
    "onnxruntime": "realtime.engines.ort_engine:OrtEngine",
    "tensorrt": "realtime.engines.trt_engine:TensorRTEngine",
}


class EngineUnavailable(RuntimeError):
    """This engine cannot run on this machine; the message says why and what to install."""


class Engine(Protocol):
    name: str
    device: str

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        ...


def padded(run, image: np.ndarray, factors: np.ndarray, multiple: int) -> np.ndarray:
    """Run on the frame reflect-padded to a multiple of the student's stride, then crop back (720p, 1080p)."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        image = np.pad(image, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    return run(image, factors)[..., :h, :w]


def load_engine(name: str, student_dir: str | Path, device: str = "auto") -> Engine:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choices: {sorted(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise EngineUnavailable(f"engine {name!r} needs {exc.name}, which is not installed") from None
    return getattr(mod, cls)(Path(student_dir), device)
