"""The onnxruntime engines: the exported student (student.onnx, exported on first use if missing), and its int8
quantisation (student.int8.onnx, made by `python -m realtime.export STUDENT --int8 --calibrate PHOTOS`).

Providers: TensorRT and CUDA execution providers first when onnxruntime-gpu offers them, else the CPU. The int8
model is for CPUs: on the 2-core machine it runs the network 1.8x faster, 48-50 dB from the float one.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from realtime.export import INT8_ONNX, cpu_class, current_int8, current_onnx, int8_floor, int8_parity

from . import EngineUnavailable, padded


class OrtEngine:
    name = "onnxruntime"
    precision = "fp32"

    def __init__(self, student_dir: Path, device: str = "auto"):
        import onnxruntime as ort

        from studio.models.student_unet import StudentConfig

        onnx_path = self._model(student_dir)
        available = ort.get_available_providers()
        wanted = ["CPUExecutionProvider"] if device == "cpu" else [
            p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available] + ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("TOONLAB_ORT_THREADS", "0")) or (os.cpu_count() or 1)
        # onnxruntime's threads spin for a while after each run by default; in the realtime stream the other
        # stages (faces, flow, encoding) need those cores then, and every small numpy call after a run crawled.
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      os.environ.get("TOONLAB_ORT_SPIN", "0"))
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=wanted)
        self.device = self.session.get_providers()[0]
        config = StudentConfig.read(student_dir)
        self.multiple, self.down = config.multiple, config.down

    @staticmethod
    def _model(student_dir: Path) -> Path:
        return current_onnx(student_dir)

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        return padded(self._run, image, factors, self.multiple)

    def _run(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"image": np.ascontiguousarray(image, np.float32),
                                       "factors": np.ascontiguousarray(factors, np.float32)})[0]


class OrtInt8Engine(OrtEngine):
    """The student quantised to int8 (student.int8.onnx), when it was made from the current weights."""

    name = "onnxruntime-int8"
    precision = "int8"

    @staticmethod
    def _model(student_dir: Path) -> Path:
        path = current_int8(student_dir)
        if path is None:
            state = "is older than the weights" if (student_dir / INT8_ONNX).is_file() else "is missing"
            raise EngineUnavailable(
                f"{student_dir / INT8_ONNX} {state}; make it from real photos: python -m realtime.export "
                f"{student_dir} --int8 --calibrate PHOTOS (or use the onnxruntime engine)")
        parity, floor = int8_parity(student_dir), int8_floor(student_dir)
        if parity is not None and parity["psnr_min"] < floor:
            raise EngineUnavailable(f"the int8 model is {parity['psnr_min']:.1f} dB from the float one on this CPU "
                                    f"class ({cpu_class()}), under {floor:g} dB: the float model is used")
        return path
