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


def test_cli_engine_path(student, tmp_path, media_dir):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    src = media_dir / "images" / "lowres_240p_01.jpg"
    r = subprocess.run([sys.executable, "-m", "studio", "stylize", str(src), "--out", str(tmp_path / "o"),
                        "--engine", "onnxruntime", "--student", str(student), "--line", "0.9", "--json"],
                       cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.splitlines()[-1])
    assert row["engine"] == "onnxruntime" and row["faces"] == 1 and row["factors"]["line"] == 0.9
    from PIL import Image
    assert Image.open(row["output"]).size == (427, 240)
    r = subprocess.run([sys.executable, "-m", "studio", "--set", f"data_dir={tmp_path}", "stylize", str(src),
                        "--out", str(tmp_path / "p"), "--engine", "torch", "--character", "noir"],
                       cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no student for character 'noir'" in r.stderr and "Traceback" not in r.stderr


def test_several_engines_stay_resident(tmp_path):
    """A face student and a background student loaded at once, each answering with its own weights."""
    folders = []
    for i in range(2):
        torch.manual_seed(10 + i)
        m = StudentUNet(StudentConfig(width=8))
        for p in m.parameters():
            torch.nn.init.normal_(p, 0, 0.05)
        folders.append(m.save_pretrained(tmp_path / f"s{i}"))
    face, background = load_engine("onnxruntime", folders[0], "cpu"), load_engine("torch", folders[1], "cpu")
    x = np.random.default_rng(1).random((1, 3, 48, 48), dtype=np.float32)
    f = np.full((1, 4), 0.5, np.float32)
    a1, b1 = face(x, f), background(x, f)
    a2, b2 = face(x, f), background(x, f)
    assert np.abs(a1 - b1).mean() > 1e-3 and np.array_equal(a1, a2) and np.array_equal(b1, b2)
