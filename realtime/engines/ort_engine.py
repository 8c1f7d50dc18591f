"""The onnxruntime engine: the exported student (student.onnx, exported on first use if missing).

Providers: TensorRT and CUDA execution providers first when onnxruntime-gpu offers them, else the CPU.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class OrtEngine:
    name = "onnxruntime"

    def __init__(self, student_dir: Path, device: str = "auto"):
        import onnxruntime as ort

        from realtime.export import current_onnx

        onnx_path = current_onnx(student_dir)
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
        from studio.models.student_unet import StudentConfig

        self.multiple = StudentConfig(**json.loads((student_dir / "config.json").read_text())).multiple

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        from . import padded

        return padded(self._run, image, factors, self.multiple)

    def _run(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"image": np.ascontiguousarray(image, np.float32),
                                       "factors": np.ascontiguousarray(factors, np.float32)})[0]
