"""The TensorRT engine: the student's ONNX built into a TensorRT fp16 plan for this GPU, cached on disk.

    engine = load_engine("tensorrt", "students/classic")   # first load builds the plan (a minute), later loads read it

Needs NVIDIA TensorRT 10 for Python (`import tensorrt`) and a CUDA GPU with a CUDA build of torch. torch tensors
hold the device buffers and TensorRT runs on torch's current stream, so no pycuda / cuda-python is needed.
One plan serves batches of 1..4 frames from one stride up to 1080p (landscape), any multiple of the student's
stride in between. Plans are cached in `<student>/engines/` under a key of everything a plan depends on: model
hash, shape profile, precision, TensorRT version and GPU (a plan runs only where it was built).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from realtime.export import current_onnx, model_hash
from studio.io import atomic_write

from . import EngineUnavailable, padded

MAX_BATCH = 4
OPT_HW = (512, 512)  # the size TensorRT tunes its kernels for
MAX_HW = (1088, 1920)  # a 1080p landscape frame padded to the stride
INSTALL = ("It needs NVIDIA TensorRT 10 for Python (install it from NVIDIA: https://developer.nvidia.com/tensorrt) "
           "and a CUDA GPU with a CUDA build of torch (`make setup-gpu`); `--engine onnxruntime` works everywhere.")


def shape_profile(multiple: int, factors: int) -> dict[str, list[list[int]]]:
    """min / opt / max shape of each input: one frame of one stride .. MAX_BATCH frames of MAX_HW, on the stride."""
    def up(n: int) -> int:
        return -(-n // multiple) * multiple

    (oh, ow), (mh, mw) = [(up(h), up(w)) for h, w in (OPT_HW, MAX_HW)]
    return {"image": [[1, 3, multiple, multiple], [1, 3, oh, ow], [MAX_BATCH, 3, mh, mw]],
            "factors": [[1, factors], [1, factors], [MAX_BATCH, factors]]}


def cache_key(model_hash: str, profile: dict, precision: str, trt_version: str, gpu: str) -> str:
    """The plan's file name: a digest of everything the plan depends on (DESIGN convention 7)."""
    blob = json.dumps({"model": model_hash, "profile": profile, "precision": precision, "tensorrt": trt_version,
                       "gpu": gpu}, sort_keys=True)
    return f"student-{model_hash}-{precision}-trt{trt_version}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.plan"


class TensorRTEngine:
    name = "tensorrt"

    def __init__(self, student_dir: Path, device: str = "auto", cache_dir: str | Path | None = None):
        import torch

        if device != "auto" and not device.startswith("cuda"):
            raise EngineUnavailable(f"engine 'tensorrt' runs only on a CUDA GPU, not on {device!r}. {INSTALL}")
        missing = [] if torch.cuda.is_available() else ["torch sees no CUDA GPU"]
        try:
            import tensorrt as trt
        except (ImportError, OSError) as exc:  # OSError: the package is there but its CUDA libraries are not
            trt = None
            missing.append("NVIDIA TensorRT (the `tensorrt` package) is not installed"
                           if getattr(exc, "name", None) == "tensorrt" else f"NVIDIA TensorRT does not load ({exc})")
        if missing:
            raise EngineUnavailable(f"engine 'tensorrt' cannot run here: {' and '.join(missing)}. {INSTALL}")
        if int(trt.__version__.split(".")[0]) < 10:
            raise EngineUnavailable(f"engine 'tensorrt' needs TensorRT 10 or newer, found {trt.__version__}. {INSTALL}")

        from studio.models.student_unet import StudentConfig

        config = StudentConfig.read(student_dir)
        self.device = "cuda" if device == "auto" else device
        self.multiple, self.down = config.multiple, config.down
        self.profile = shape_profile(config.multiple, config.factors)
        # TensorRT 11 dropped the FP16 flag (networks are strongly typed: fp32 ONNX in, fp32 plan out); say so here
        self.precision = "fp16" if hasattr(trt.BuilderFlag, "FP16") else "fp32"
        logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            gpu = f"{torch.cuda.get_device_name()} sm{''.join(map(str, torch.cuda.get_device_capability()))}"
            key = cache_key(model_hash(student_dir), self.profile, self.precision, trt.__version__, gpu)
            self.plan_path = Path(cache_dir or student_dir / "engines") / key
            if not self.plan_path.is_file():
                plan = _build(trt, logger, current_onnx(student_dir), self.profile, self.precision)
                atomic_write(self.plan_path, plan)  # a crashed build never leaves a half plan under the real name
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(self.plan_path.read_bytes())
            if self.engine is None:
                raise RuntimeError(f"TensorRT could not load {self.plan_path} (see its log above); "
                                   "delete the file to rebuild it")
            self.context = self.engine.create_execution_context()
            # Our own stream, not the legacy default one: TensorRT warns that enqueueing there costs extra syncs
            self.stream = torch.cuda.Stream()

    def __call__(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        return padded(self._run, image, factors, self.multiple)

    def _run(self, image: np.ndarray, factors: np.ndarray) -> np.ndarray:
        import torch

        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            # The ONNX's inputs and output are float32; the fp16 is inside the plan
            x = torch.from_numpy(np.ascontiguousarray(image, np.float32)).to(self.device)
            f = torch.from_numpy(np.ascontiguousarray(factors, np.float32)).to(self.device)
            ctx = self.context
            if not (ctx.set_input_shape("image", tuple(x.shape)) and ctx.set_input_shape("factors", tuple(f.shape))):
                lo, _, hi = self.profile["image"]
                raise ValueError(f"input of shape {tuple(x.shape)} is outside this TensorRT plan's profile "
                                 f"({lo} .. {hi}, H and W multiples of {self.multiple})")
            y = torch.empty(tuple(ctx.get_tensor_shape("stylized")), dtype=torch.float32, device=self.device)
            for name, t in (("image", x), ("factors", f), ("stylized", y)):
                ctx.set_tensor_address(name, t.data_ptr())
            if not ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream):
                raise RuntimeError("TensorRT failed to run the student (see its log above)")
            return y.cpu().numpy()  # waits for the stream


def _build(trt, logger, onnx_path: Path, profile: dict, precision: str) -> bytes:
    """Parse the ONNX and build a serialized plan with one dynamic-shape optimisation profile."""
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    shapes = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        shapes.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(shapes)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT could not build {onnx_path} (see its log above)")
    return bytes(plan)
