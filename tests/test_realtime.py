"""Student export and engines: ONNX parity, every installed engine agrees, clear errors."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realtime.engines import ENGINES, EngineUnavailable, load_engine  # noqa: E402
from realtime.export import export_onnx  # noqa: E402
from studio.models.student_unet import StudentConfig, StudentUNet  # noqa: E402


@pytest.fixture()
def student(tmp_path):
    torch.manual_seed(1)
    model = StudentUNet(StudentConfig(width=8))
    for p in model.parameters():
        torch.nn.init.normal_(p, 0, 0.05)
    return model.save_pretrained(tmp_path / "student")


def test_onnx_export_passes_parity(student):
    onnx = export_onnx(student)
    report = json.loads((student / "export.json").read_text())
    assert onnx.is_file() and report["parity_max_abs_diff"] < 1e-4 and len(report["model_hash"]) == 16


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_installed_engine_matches_torch(student, name):
    try:
        engine = load_engine(name, student, device="cpu")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    ref = StudentUNet.from_pretrained(student)
    x = np.random.default_rng(0).random((1, 3, 72, 90), dtype=np.float32)  # not a multiple of 16: padded
    f = np.array([[0.2, 0.4, 0.6, 0.8]], np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (0, 8), (0, 6)), mode="reflect")
    with torch.no_grad():
        want = ref(torch.from_numpy(xp), torch.from_numpy(f)).numpy()[..., :72, :90]
    got = engine(x, f)
    assert got.shape == x.shape and np.abs(got - want).max() < 1e-4, engine.name


def test_changed_student_is_reexported(student):
    first = load_engine("onnxruntime", student, device="cpu")
    model = StudentUNet.from_pretrained(student)
    with torch.no_grad():
        model.out.bias.add_(0.1)
    model.save_pretrained(student)
    second = load_engine("onnxruntime", student, device="cpu")
    x = np.full((1, 3, 32, 32), 0.5, np.float32)
    f = np.zeros((1, 4), np.float32)
    assert np.abs(first(x, f) - second(x, f)).max() > 0.01


def test_unknown_engine_lists_choices(student):
    with pytest.raises(ValueError, match="onnxruntime"):
        load_engine("openvino", student)
