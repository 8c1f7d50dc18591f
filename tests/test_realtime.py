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


@pytest.mark.parametrize("config", [StudentConfig(width=8), StudentConfig(down=2, width=8, depth=3),
                                    StudentConfig(down=8, width=8, depth=1), StudentConfig(width=8, guided=2, gate=1),
                                    StudentConfig(width=8, refine=4), StudentConfig(width=8, colour_map=1)])
def test_the_exported_form_is_the_same_function(config):
    """StudentUNet.for_export (what the ONNX is exported from): the pixel unshuffle folded into a strided first
    convolution and the transposed convolutions as 1x1 convolutions and a pixel shuffle give the trained model's
    output to float rounding, for every head and unshuffle factor; the graph has no transposed convolution left."""
    torch.manual_seed(0)
    model = StudentUNet(config).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, 0, 0.05)
    exported = model.for_export()
    x, f = torch.rand(2, 3, 5 * config.multiple, 3 * config.multiple), torch.rand(2, config.factors)
    with torch.no_grad():
        assert float((model(x, f) - exported(x, f)).abs().max()) < 1e-5
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in exported.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())  # the model itself is unchanged


@pytest.mark.parametrize("name", sorted(n for n in ENGINES if not n.endswith("-int8")))  # int8: by PSNR, below
def test_every_installed_engine_matches_torch(student, name):
    try:
        engine = load_engine(name, student, device="cpu")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    ref = StudentUNet.from_pretrained(student)
    x = np.random.default_rng(0).random((1, 3, 72, 90), dtype=np.float32)  # not a multiple of 16: padded
    f = np.array([[0.2, 0.4, 0.6]], np.float32)
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
    f = np.zeros((1, 3), np.float32)
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
    # The face warp happens before the student, from the detected landmarks: warp 0 and warp 1 differ at the
    # face and nowhere far from it.
    outs = {}
    for warp in ("0", "1"):
        r = subprocess.run([sys.executable, "-m", "studio", "stylize", str(src), "--out", str(tmp_path / f"w{warp}"),
                            "--engine", "onnxruntime", "--student", str(student), "--warp", warp, "--json"],
                           cwd=repo, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        outs[warp] = np.asarray(Image.open(json.loads(r.stdout.splitlines()[-1])["output"])).astype(int)
    diff = np.abs(outs["1"] - outs["0"]).max(axis=2)
    ys, xs = np.nonzero(diff > 10)
    assert len(xs) > 50 and (diff > 10).mean() < 0.2  # a local change: the face region only
    # The teacher's contour lines are drawn over the student unless --no-contours: dark lines, not a wash
    r = subprocess.run([sys.executable, "-m", "studio", "stylize", str(src), "--out", str(tmp_path / "nc"),
                        "--engine", "onnxruntime", "--student", str(student), "--warp", "0", "--no-contours", "--json"],
                       cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.splitlines()[-1])
    assert row["contours"] is False
    plain = np.asarray(Image.open(row["output"])).astype(int)
    lines = np.abs(outs["0"] - plain).max(axis=2) > 30
    assert 0.005 < lines.mean() < 0.2, lines.mean()
    assert (outs["0"][lines].sum(axis=1) < plain[lines].sum(axis=1)).mean() > 0.9  # darker where the lines are
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "studio", "stylize", str(src), "--out", str(tmp_path / "p"),
                        "--engine", "torch", "--character", "noir", "--student", str(tmp_path / "empty")],
                       cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "is not a student folder (it needs config.json and model.safetensors)" in r.stderr and "Traceback" not in r.stderr


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
    f = np.full((1, 3), 0.5, np.float32)
    a1, b1 = face(x, f), background(x, f)
    a2, b2 = face(x, f), background(x, f)
    assert np.abs(a1 - b1).mean() > 1e-3 and np.array_equal(a1, a2) and np.array_equal(b1, b2)


def _tensorrt_runs_here() -> bool:
    import importlib.util

    return torch.cuda.is_available() and importlib.util.find_spec("tensorrt") is not None


@pytest.mark.skipif(_tensorrt_runs_here(), reason="TensorRT and a CUDA GPU are present here")
def test_tensorrt_unavailable_says_what_to_install(student):
    with pytest.raises(EngineUnavailable) as err:
        load_engine("tensorrt", student)
    message = str(err.value)
    assert "TensorRT" in message and "onnxruntime" in message and "CUDA" in message


def test_tensorrt_plan_key_and_profile():
    from realtime.engines.trt_engine import cache_key, shape_profile

    profile = shape_profile(16, 4)
    assert profile["image"] == [[1, 3, 16, 16], [1, 3, 512, 512], [4, 3, 1088, 1920]]
    assert profile["factors"] == [[1, 4], [1, 4], [4, 4]]
    assert shape_profile(64, 4)["image"][2] == [4, 3, 1088, 1920]
    assert shape_profile(48, 4)["image"][2][2:] == [1104, 1920]  # rounded up to the stride
    base = dict(model_hash="0123456789abcdef", profile=profile, precision="fp16", trt_version="10.3.0", gpu="H100 sm90")
    key = cache_key(**base)
    assert key == cache_key(**base) and key.endswith(".plan") and "/" not in key
    for change in (dict(model_hash="fedcba9876543210"), dict(profile=shape_profile(32, 4)), dict(precision="fp32"),
                   dict(trt_version="10.4.0"), dict(gpu="L4 sm89")):
        assert cache_key(**{**base, **change}) != key, change


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["torch", "tensorrt"])
def test_gpu_engines_match_onnxruntime(student, name):
    """fp16 on the GPU (torch replayed as a CUDA graph; a TensorRT plan) agrees with float32 onnxruntime, also
    after the frame shape changes (the graph is re-captured; the plan's profile is dynamic)."""
    try:
        engine = load_engine(name, student, device="cuda")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    ref = load_engine("onnxruntime", student, device="cpu")
    rng = np.random.default_rng(0)
    kept = []
    for shape in [(1, 3, 72, 90), (1, 3, 72, 90), (1, 3, 10, 12), (2, 3, 64, 48)]:  # 10x12: under the stride
        x = rng.random(shape, dtype=np.float32)
        f = rng.random((shape[0], 3), dtype=np.float32)
        got, want = engine(x, f), ref(x, f)
        assert got.shape == want.shape and np.abs(got - want).max() < 2e-2, (engine.name, shape)
        kept.append((got.copy(), got))
    assert all(np.array_equal(a, b) for a, b in kept)  # a result is the caller's: later frames do not overwrite it
    if name == "torch":
        assert engine.mode == "cuda-graph"
    else:
        assert engine.plan_path.parent == student / "engines" and engine.plan_path.is_file()
        built = engine.plan_path.stat().st_mtime_ns
        again = load_engine("tensorrt", student, device="cuda")
        assert again.plan_path == engine.plan_path and again.plan_path.stat().st_mtime_ns == built  # reused


def test_int8_engine_from_real_photos_and_refused_when_stale(student, media_dir):
    """realtime.export's int8 model: calibrated on real photos, checked on the held-out ones, served by the
    onnxruntime-int8 engine close to the float one; missing or older than the weights, the engine says how to make
    it; a check it fails writes nothing."""
    from realtime.export import INT8_ONNX, ParityError, check_int8, cpu_class, main, quantize_int8
    from studio.io import load_image

    photos = sorted((media_dir / "images").glob("*.jpg"))[:8]
    with pytest.raises(EngineUnavailable, match="is missing.*--int8 --calibrate"):
        load_engine("onnxruntime-int8", student, device="cpu")
    with pytest.raises(ParityError):
        quantize_int8(student, photos, side=128, min_psnr=200.0)
    assert not (student / INT8_ONNX).exists() and not list(student.glob(".tmp-*"))
    quantize_int8(student, photos, side=128)
    report = json.loads((student / "int8.json").read_text())
    assert len(report["calibration_photos"]) == 6 and len(report["parity_photos"]) == 2
    assert report["parity_psnr_min"] > 40
    fast, ref = load_engine("onnxruntime-int8", student, "cpu"), load_engine("onnxruntime", student, "cpu")
    assert (fast.name, fast.precision, ref.precision) == ("onnxruntime-int8", "int8", "fp32")
    img = load_image(photos[0])[:96, :160]
    x = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
    f = np.array([[0.3, 0.6, 0.9]], np.float32)
    a, b = fast(x, f), ref(x, f)
    assert a.shape == b.shape == x.shape and 10 * np.log10(1.0 / np.mean((a - b) ** 2)) > 40
    # Parity is recorded per CPU class (int8 kernels saturate differently on AVX2, AVX-512F, VNNI); re-measured
    # here by --check-int8 on the same held-out photos; a class under the floor gets the float model from `auto`.
    measured = report["parity_by_cpu"][cpu_class()]
    again = check_int8(student, media_dir / "images")
    assert again["psnr_min"] == pytest.approx(measured["psnr_min"], abs=0.05)
    report = json.loads((student / "int8.json").read_text())
    report["parity_by_cpu"][cpu_class()]["psnr_min"] = 31.0  # as the AVX2 machine measured before reduce_range
    (student / "int8.json").write_text(json.dumps(report))
    with pytest.raises(EngineUnavailable, match="31.0 dB from the float one on this CPU class"):
        load_engine("onnxruntime-int8", student, device="cpu")
    chosen = load_engine("auto", student, device="cpu")
    assert chosen.name == "onnxruntime" and "31.0 dB" in chosen.passed_over["onnxruntime-int8"]
    model = StudentUNet.from_pretrained(student)
    with torch.no_grad():
        model.out.bias.add_(0.1)
    model.save_pretrained(student)
    with pytest.raises(EngineUnavailable, match="older than the weights"):
        load_engine("onnxruntime-int8", student, device="cpu")
    with pytest.raises(SystemExit):
        main([str(student), "--int8"])  # the activation ranges need photos


def test_auto_takes_the_fastest_engine_that_runs_and_says_what_it_passed_over(student, media_dir):
    """`auto` is the explicit fallback: on this CPU the int8 model when the student has a current one, else the
    float onnxruntime engine, which then names the int8 engine it passed over and why."""
    from realtime.engines import auto_order
    from realtime.export import quantize_int8

    if auto_order("cpu")[:2] != ["onnxruntime-int8", "onnxruntime"]:
        pytest.skip("not the CPU order")
    plain = load_engine("auto", student, device="cpu")
    assert plain.name == "onnxruntime" and "is missing" in plain.passed_over["onnxruntime-int8"]
    quantize_int8(student, sorted((media_dir / "images").glob("*.jpg"))[:8], side=128)
    fast = load_engine("auto", student, device="cpu")
    assert fast.name == "onnxruntime-int8" and fast.passed_over == {}


def test_auto_prefers_the_gpu_where_torch_sees_one(monkeypatch):
    """A CUDA machine whose onnxruntime has no CUDA provider (torch's CUDA wheel beside the CPU onnxruntime) still
    runs the student on the GPU first; device="cpu" keeps the CPU order."""
    import realtime.engines as engines

    monkeypatch.setattr(engines, "_cuda_visible", lambda: True)
    assert engines.auto_order("auto")[:2] == ["tensorrt", "torch"]
    assert engines.auto_order("cpu")[:2] == ["onnxruntime-int8", "onnxruntime"]
    monkeypatch.setattr(engines, "_cuda_visible", lambda: False)
    if not any("CUDA" in p for p in pytest.importorskip("onnxruntime").get_available_providers()):
        assert engines.auto_order("auto")[0] == "onnxruntime-int8"


def test_cpu_class_falls_back_to_proc_cpuinfo_as_the_same_class(monkeypatch):
    """Without numpy's CPUID answer (another numpy layout) the class is read from /proc/cpuinfo, natively the same."""
    import importlib
    from pathlib import Path

    from realtime.export import cpu_class

    if not Path("/proc/cpuinfo").is_file():
        pytest.skip("no /proc/cpuinfo here")
    asked = cpu_class()
    real = importlib.import_module

    def without_cpuid(name, *args, **kwargs):
        if name.endswith("._multiarray_umath"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_cpuid)
    assert cpu_class() == asked
