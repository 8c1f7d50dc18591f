"""Export a student to ONNX (dynamic batch, height and width) and check it against torch.

    python -m realtime.export STUDENT_DIR [--out STUDENT_DIR/student.onnx] [--opset 17]

The parity check runs the ONNX model in onnxruntime and the torch model on the same random inputs at two
sizes; the export fails if they differ by more than `atol`. The result (sizes, max difference) is written
to `export.json` beside the model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np


class ParityError(RuntimeError):
    """The exported model does not reproduce the torch model."""


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
    tmp = out.with_name(f".tmp-{out.name}")
    torch.onnx.export(model, (x, f), str(tmp), input_names=["image", "factors"], output_names=["stylized"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "factors": {0: "batch"},
                                    "stylized": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=opset, dynamo=False)
    report = parity(model, tmp, sizes=((2, 6 * m, 10 * m), (1, 12 * m, 7 * m)), atol=atol)
    tmp.replace(out)
    report.update({"onnx": out.name, "model_hash": model_hash(student_dir), "opset": opset})
    (out.parent / "export.json").write_text(json.dumps(report, indent=2))
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student", help="student folder (config.json + model.safetensors)")
    ap.add_argument("--out")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args(argv)
    print(export_onnx(a.student, a.out, a.opset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
