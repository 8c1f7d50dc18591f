"""Inference engines for a student, behind one registry: `torch`, `onnxruntime`, `tensorrt`.

    engine = load_engine("onnxruntime", "students/classic")
    out = engine(frames_nchw_float01, factors_nk)       # numpy in, numpy out
    engine.name, engine.device

- torch: the module itself; CPU float32, or CUDA float16 replayed as a CUDA graph (`engine.mode`).
- onnxruntime: the exported `student.onnx`; runs everywhere (TensorRT/CUDA providers when onnxruntime-gpu has them).
- onnxruntime-int8: `student.int8.onnx`, the same network quantised to int8 on real photos (realtime.export --int8):
  the fast CPU path, 48-50 dB from the float model; unavailable for a student without a current one.
- tensorrt: the ONNX built into a TensorRT fp16 plan, cached in `<student>/engines/`; needs NVIDIA TensorRT 10
  and a CUDA GPU.

An engine that cannot run here raises EngineUnavailable saying why. `auto` is the explicit fallback: the fastest
engine that runs here (`auto_order`: tensorrt, torch, onnxruntime on a CUDA machine; onnxruntime-int8, then
onnxruntime on a CPU); the engine it returns names itself (`engine.name`, shown in every result) and lists the
faster ones it passed over with their reasons (`engine.passed_over`). Several engines can stay resident at once
(e.g. face and background).
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from studio.models import BadStudent

ENGINES: dict[str, str] = {
    "torch": "realtime.engines.torch_engine:TorchEngine",
    "onnxruntime": "realtime.engines.ort_engine:OrtEngine",
    "onnxruntime-int8": "realtime.engines.ort_engine:OrtInt8Engine",
    "tensorrt": "realtime.engines.trt_engine:TensorRTEngine",
}


AUTO = "auto"


class EngineUnavailable(RuntimeError):
    """This engine cannot run on this machine; the message says why and what to install."""


class Engine(Protocol):
    name: str
    device: str
    precision: str  # fp32, fp16 or int8
    down: int  # the student's pixel-unshuffle factor: it places its output in down x down blocks

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        ...


def padded(run, image: np.ndarray, factors: np.ndarray, multiple: int) -> np.ndarray:
    """Run on the frame reflect-padded to a multiple of the student's stride, then crop back (720p, 1080p)."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        image = np.pad(image, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    return run(image, factors)[..., :h, :w]


def _cuda_visible() -> bool:
    """A CUDA GPU that torch can use. torch is imported only where an NVIDIA driver is present, so a CPU machine
    does not pay torch's import to choose onnxruntime."""
    if not (os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")):
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def auto_order(device: str = "auto") -> list[str]:
    """The engines `auto` tries, fastest first: on a machine with a CUDA GPU (a CUDA provider in onnxruntime, as in
    the GPU profile, or a torch that sees one) and a device other than "cpu", TensorRT, then torch (fp16, CUDA
    graphs), then onnxruntime; else the int8 model, then the float one (1.8x apart on the 2-core CPU machine)."""
    if device == "cpu":
        gpu = False
    else:
        try:
            import onnxruntime as ort

            gpu = "CUDAExecutionProvider" in ort.get_available_providers()
        except ImportError:
            gpu = False
        gpu = gpu or _cuda_visible()
    return ["tensorrt", "torch", "onnxruntime"] if gpu else ["onnxruntime-int8", "onnxruntime", "torch"]


def load_engine(name: str, student_dir: str | Path, device: str = "auto") -> Engine:
    if name == AUTO:
        passed_over: dict[str, str] = {}
        for candidate in auto_order(device):
            try:
                engine = load_engine(candidate, student_dir, device)
            except EngineUnavailable as exc:
                passed_over[candidate] = str(exc)
                continue
            engine.passed_over = passed_over
            return engine
        raise EngineUnavailable("no engine can run this student here: " +
                                "; ".join(f"{k}: {v}" for k, v in passed_over.items()))
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choices: {[AUTO] + sorted(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise EngineUnavailable(f"engine {name!r} needs {exc.name}, which is not installed") from None
    folder = Path(student_dir)
    try:
        return getattr(mod, cls)(folder, device)
    except (EngineUnavailable, ValueError, FileNotFoundError):  # incl. BadStudent: already one line
        raise
    except Exception as exc:  # noqa: BLE001 - a model file this engine cannot read (onnxruntime's, TensorRT's)
        raise BadStudent(f"{folder}: {name} cannot load this student ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})") from None
