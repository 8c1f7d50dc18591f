"""Export a student to ONNX (dynamic batch, height and width) and check it against torch; quantise it to int8.

    python -m realtime.export STUDENT_DIR [--out STUDENT_DIR/student.onnx] [--opset 17]
    python -m realtime.export STUDENT_DIR --int8 --calibrate PHOTOS     # + STUDENT_DIR/student.int8.onnx
    python -m realtime.export STUDENT_DIR --check-int8 --calibrate PHOTOS   # its parity on this CPU class

The parity check runs the ONNX model in onnxruntime and the torch model on the same random inputs at two
sizes; the export fails if they differ by more than `atol`. The result (sizes, max difference) is written
to `export.json` beside the model.

`--int8` quantises the exported model for CPUs (onnxruntime static quantisation, QDQ: int8 weights per output
channel in a 7-bit range, so that CPUs without VNNI do not saturate, uint8 activations whose ranges are measured
on real photos, `--calibrate`, a folder of images). Every fourth photo is held out of the calibration and checks
it: the int8 model must stay within `--min-psnr` dB (default 40) of the float one there, or nothing is written.
`int8.json` records the model hash, the photos and the parity, per CPU class (`parity_by_cpu`: avx512_vnni,
avx512f, avx2, ...; int8 kernels saturate differently on each; `--check-int8` measures another class on the same
held-out photos). The `onnxruntime-int8` engine (realtime.engines) serves it where its class's parity holds
(elsewhere `auto` takes the float model and says why): 1.8x faster on the 2-core CPU machine, 47-50 dB from float
on average (docs/PERFORMANCE.md, "Student engines").
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from studio.io import atomic_path, atomic_write


class ParityError(RuntimeError):
    """The exported model does not reproduce the torch model."""


INT8_ONNX, INT8_REPORT = "student.int8.onnx", "int8.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def model_hash(student_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update((Path(student_dir) / name).read_bytes())
    return h.hexdigest()[:16]


def current_onnx(student_dir: str | Path) -> Path:
    """The student's `student.onnx`, exported (and parity-checked) first when missing or older than the weights.

    Every engine that runs the ONNX comes through here, so a retrained student is never served stale."""
    student_dir = Path(student_dir)
    onnx_path, report = student_dir / "student.onnx", student_dir / "export.json"
    if not onnx_path.is_file() or not report.is_file() or \
            json.loads(report.read_text()).get("model_hash") != model_hash(student_dir):
        export_onnx(student_dir, onnx_path)
    return onnx_path


def export_onnx(student_dir: str | Path, out: str | Path | None = None, opset: int = 17, atol: float = 1e-4) -> Path:
    import torch

    from studio.models.student_unet import StudentUNet

    student_dir = Path(student_dir)
    model = StudentUNet.from_pretrained(student_dir).eval()
    m = model.config.multiple
    out = Path(out) if out else student_dir / "student.onnx"
    x = torch.rand(1, 3, 8 * m, 8 * m)
    f = torch.rand(1, model.config.factors)
    with atomic_path(out) as tmp:
        # The exported graph is model.for_export(): the same function in the ops int8 onnxruntime runs fastest; the
        # parity check below holds it to the trained model itself.
        torch.onnx.export(model.for_export(), (x, f), str(tmp), input_names=["image", "factors"],
                          output_names=["stylized"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "factors": {0: "batch"},
                                        "stylized": {0: "batch", 2: "height", 3: "width"}},
                          opset_version=opset, dynamo=False)
        report = parity(model, tmp, sizes=((2, 6 * m, 10 * m), (1, 12 * m, 7 * m)), atol=atol)
    report.update({"onnx": out.name, "model_hash": model_hash(student_dir), "opset": opset})
    atomic_write(out.parent / "export.json", json.dumps(report, indent=2))
    return out


def parity(model, onnx_path: Path, sizes, atol: float) -> dict:
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for b, h, w in sizes:
        x = rng.random((b, 3, h, w), dtype=np.float32)
        f = rng.random((b, model.config.factors), dtype=np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x), torch.from_numpy(f)).numpy()
        got = sess.run(None, {"image": x, "factors": f})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    if worst > atol:
        raise ParityError(f"ONNX output differs from torch by {worst:.2e} (> {atol:.0e})")
    return {"parity_max_abs_diff": worst, "parity_sizes": [list(s) for s in sizes]}


def cpu_class() -> str:
    """The x86 feature level that decides how onnxruntime's int8 kernels add up (they differ in saturation):
    avx512_vnni, avx512f, avx2, else the machine name (arm64, ...). Asked of CPUID as numpy's dispatch saw it (what
    onnxruntime sees too, also on an emulated CPU: tools/emulated_cpu.sh), else read from /proc/cpuinfo."""
    import platform

    flags = _cpu_flags()
    return next((f for f in ("avx512_vnni", "avx512f", "avx2") if f in flags), platform.machine() or "unknown")


def _cpu_flags() -> set:
    """The CPU's feature flags (/proc/cpuinfo's names) as numpy's dispatch asked CPUID (numpy 2's module, then 1's),
    else /proc/cpuinfo's (which qemu-user passes through from the host), else none."""
    import importlib

    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return {name for name, key in (("avx512_vnni", "AVX512VNNI"), ("avx512f", "AVX512F"), ("avx2", "AVX2"))
                if features.get(key)}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def int8_parity(student_dir: str | Path) -> Optional[dict]:
    """What int8.json records for this CPU class ({"psnr_min", "psnr_mean", "onnxruntime"}), None if not measured."""
    report = Path(student_dir) / INT8_REPORT
    if not report.is_file():
        return None
    return json.loads(report.read_text()).get("parity_by_cpu", {}).get(cpu_class())


def int8_floor(student_dir: str | Path) -> float:
    """The parity (dB) the int8 model was held to when it was made (int8.json `min_psnr`, 40 by default)."""
    report = Path(student_dir) / INT8_REPORT
    return float(json.loads(report.read_text()).get("min_psnr", 40.0)) if report.is_file() else 40.0


def current_int8(student_dir: str | Path) -> Optional[Path]:
    """The student's int8 model when it was quantised from the current weights, else None."""
    student_dir = Path(student_dir)
    path, report = student_dir / INT8_ONNX, student_dir / INT8_REPORT
    if not path.is_file() or not report.is_file():
        return None
    return path if json.loads(report.read_text()).get("model_hash") == model_hash(student_dir) else None


def calibration_photos(folder: str | Path, limit: int = 96, pattern: str = "*") -> list[Path]:
    """Image files under `folder` matching `pattern` (recursively, sorted), at most `limit` spread evenly over
    them (a pair folder: pattern "*_in.png", the photos the student sees)."""
    files = sorted(p for p in Path(folder).rglob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) > limit:
        files = [files[int(i * len(files) / limit)] for i in range(limit)]
    return files


def _student_input(photo: np.ndarray, multiple: int, side: int) -> np.ndarray:
    """RGB uint8 → (1, 3, H, W) float in [0, 1], the long side at most `side`, H and W multiples of `multiple`."""
    h, w = photo.shape[:2]
    s = min(1.0, side / max(h, w))
    nh, nw = max(multiple, round(h * s) // multiple * multiple), max(multiple, round(w * s) // multiple * multiple)
    photo = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray((photo.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])


def quantize_int8(student_dir: str | Path, photos: Sequence[str | Path], side: int = 512,
                  min_psnr: float = 40.0, seed: int = 0) -> Path:
    """`student.int8.onnx` from the student's float ONNX, calibrated on `photos` (every fourth held out to check
    it: ParityError when the int8 output is further than `min_psnr` dB from the float one on any of them).
    Factor values are drawn per photo (two draws each), so the ranges cover the sliders."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from studio.io import load_image
    from studio.models.student_unet import StudentConfig

    student_dir = Path(student_dir)
    config = StudentConfig(**json.loads((student_dir / "config.json").read_text()))
    photos = [Path(p) for p in photos]
    held, calib = photos[3::4], [p for i, p in enumerate(photos) if i % 4 != 3]
    if len(calib) < 4 or not held:
        raise ValueError(f"int8 calibration needs at least 6 photos, got {len(photos)}")
    rng = np.random.default_rng(seed)

    def inputs(paths):
        for p in paths:
            x = _student_input(load_image(p), config.multiple, side)
            for _ in range(2):
                yield {"image": x, "factors": rng.random((1, config.factors), dtype=np.float32)}

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = inputs(calib)

        def get_next(self):
            return next(self._it, None)

    src = current_onnx(student_dir)
    out = student_dir / INT8_ONNX
    with atomic_path(out) as q:
        with tempfile.TemporaryDirectory() as tmp:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # the H, W axes are symbolic
            # reduce_range: 7-bit weights. x86 CPUs without VNNI (AVX2, AVX-512F) multiply uint8 by int8 with
            # VPMADDUBSW, whose int16 pair sums saturate with full-range weights: there the shipped models were
            # 28-36 dB from float at worst, under the 40 dB gate (on an AVX-512-VNNI CPU 45). With it: 43-45 dB
            # on the AVX2 machine; the same file runs on both kinds.
            # A guided head's filter subtracts products of means (a covariance): in 8 bits that cancels to noise, so
            # only the convolutions are quantised; the filter runs in float at 1/down (cheap).
            ops = {"op_types_to_quantize": ["Conv", "ConvTranspose", "MatMul", "Gemm"]} if config.guided else {}
            if config.colour_map:
                # The colour map multiplies the output's channels (squares, products) and weighs them: in 8 bits
                # that cost 2.5 dB of parity (43.6 -> 41.1 dB at worst on the AVX-512-VNNI machine). It stays float.
                ops["nodes_to_exclude"] = [n.name for n in onnx.load(str(pre)).graph.node
                                           if n.name.startswith("/colour/")]
            quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **ops)
        scores = _parity(src, q, _parity_feeds(held, config, side, seed))
        if min(scores) < min_psnr:
            raise ParityError(f"the int8 model is {min(scores):.1f} dB from the float one on a held-out photo "
                              f"(< {min_psnr} dB); not written")
    report = {"onnx": out.name, "model_hash": model_hash(student_dir),
              "format": "QDQ, int8 weights per channel (7-bit range), uint8 activations" + (
                  "; convolutions only (the guided head's filter in float)" if config.guided else "") + (
                  "; the colour map in float" if config.colour_map else ""),
              "onnxruntime": ort.__version__, "calibration_photos": [p.name for p in calib],
              "parity_photos": [p.name for p in held], "parity_psnr_min": min(scores),
              "parity_psnr_mean": float(np.mean(scores)), "side": side, "seed": seed, "min_psnr": min_psnr,
              "parity_by_cpu": {cpu_class(): _parity_entry(scores)}}
    atomic_write(student_dir / INT8_REPORT, json.dumps(report, indent=2))
    return out


def _parity(float_onnx: Path, int8_onnx: Path, feeds) -> list[float]:
    """PSNR (dB) of the int8 model's output against the float one's, per input, on this CPU."""
    import onnxruntime as ort

    ref, got = (ort.InferenceSession(str(m), providers=["CPUExecutionProvider"]) for m in (float_onnx, int8_onnx))
    scores = []
    for feed in feeds:
        a, b = ref.run(None, feed)[0], got.run(None, feed)[0]
        scores.append(float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12))))
    return scores


def _parity_feeds(photos, config, side: int, seed: int):
    """The inputs parity is measured on: each held-out photo with two factor draws of its own seed."""
    from studio.io import load_image

    rng = np.random.default_rng(seed + 1)
    for p in photos:
        x = _student_input(load_image(p), config.multiple, side)
        for _ in range(2):
            yield {"image": x, "factors": rng.random((1, config.factors), dtype=np.float32)}


def _parity_entry(scores: list[float]) -> dict:
    import onnxruntime as ort

    return {"psnr_min": round(min(scores), 2), "psnr_mean": round(float(np.mean(scores)), 2),
            "onnxruntime": ort.__version__}


def check_int8(student_dir: str | Path, photos_folder: str | Path) -> dict:
    """Measure the shipped int8 model against the float one on this CPU class, on the held-out photos its report
    names (found under `photos_folder`), and record it in int8.json's `parity_by_cpu`. The onnxruntime-int8
    engine refuses to run (and `auto` takes the float model) on a CPU class whose parity is under the report's
    `min_psnr`: int8 kernels saturate differently on AVX2, AVX-512F and AVX-512-VNNI."""
    from studio.models.student_unet import StudentConfig

    student_dir = Path(student_dir)
    int8 = current_int8(student_dir)
    if int8 is None:
        raise ValueError(f"{student_dir}: no int8 model for the current weights (python -m realtime.export "
                         f"{student_dir} --int8 --calibrate PHOTOS)")
    report = json.loads((student_dir / INT8_REPORT).read_text())
    by_name = {p.name: p for p in calibration_photos(photos_folder, limit=10 ** 6)}
    missing = [n for n in report["parity_photos"] if n not in by_name]
    if missing:
        raise ValueError(f"{photos_folder}: the held-out photos {missing[:3]} are not there")
    feeds = _parity_feeds([by_name[n] for n in report["parity_photos"]], StudentConfig.read(student_dir),
                          report["side"], report.get("seed", 0))
    entry = _parity_entry(_parity(current_onnx(student_dir), int8, feeds))
    report.setdefault("parity_by_cpu", {})[cpu_class()] = entry
    atomic_write(student_dir / INT8_REPORT, json.dumps(report, indent=2))
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student", help="student folder (config.json + model.safetensors)")
    ap.add_argument("--out")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--int8", action="store_true", help="also quantise to student.int8.onnx (needs --calibrate)")
    ap.add_argument("--calibrate", metavar="PHOTOS", help="a folder of photos for the int8 ranges and check")
    ap.add_argument("--min-psnr", type=float, default=40.0, help="int8 vs float on the held-out photos, dB")
    ap.add_argument("--check-int8", action="store_true",
                    help="measure the existing int8 model on this CPU class (held-out photos under --calibrate) and "
                         "record it in int8.json; the int8 engine is not used where it falls under --min-psnr")
    a = ap.parse_args(argv)
    if (a.int8 or a.check_int8) and not a.calibrate:
        ap.error("--int8 and --check-int8 need --calibrate PHOTOS (a folder of real photos)")
    if a.check_int8:
        try:
            entry = check_int8(a.student, a.calibrate)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{cpu_class()}: int8 {entry['psnr_min']:.1f} dB from float at worst ({entry['psnr_mean']:.1f} mean)")
        return 0
    print(export_onnx(a.student, a.out, a.opset))
    if a.int8:
        try:
            print(quantize_int8(a.student, calibration_photos(a.calibrate), min_psnr=a.min_psnr))
        except (ValueError, ParityError) as exc:
            print(f"error: {a.calibrate}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
