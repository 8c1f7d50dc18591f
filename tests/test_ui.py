"""The studio app, driven through gradio_client against a real server on 127.0.0.1.

    .venv/bin/python -m pytest -q tests/test_ui.py      (about 30 s; photos from $TEST_MEDIA_DIR)
"""
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from studio.config import load_config  # noqa: E402
from studio.ui import build_app, launch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAX_UPLOAD_MB = 1  # small, so the upload limit can be tested with a small file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_building_the_app_loads_nothing_heavy():
    # A fresh interpreter: other tests in this session import mediapipe and torch themselves.
    code = ("import sys; from studio.config import load_config; from studio.ui import build_app; "
            "app = build_app(load_config()); "
            "assert not app.toonlab_context.stylizer_created, 'Stylizer created at build time'; "
            "print(sorted(m for m in ('mediapipe', 'torch', 'diffusers', 'insightface', 'onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    cfg = load_config(None, [f"data_dir={data}", "server.host=127.0.0.1", f"server.port={port}",
                             f"server.max_upload_mb={MAX_UPLOAD_MB}",
                             # the sd teacher must fail fast and clearly: no base model, nothing downloaded
                             f"sd.base={data / 'no-such-model'}", "sd.local_files_only=true"])
    app = build_app(cfg)
    assert not app.toonlab_context.stylizer_created
    launch(app, cfg, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", data, app
    app.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server[0], verbose=False)


def test_stylize_through_the_api(server, client, media_dir):
    _, data, app = server
    src = media_dir / "images" / "portrait_light_skin_asian_01.jpg"
    before_after, download, report = client.predict(image=handle_file(str(src)), character="noir", line=0.8,
                                                    api_name="/stylize")
    assert app.toonlab_context.stylizer_created
    out = np.asarray(Image.open(download).convert("RGB"))
    original = np.asarray(Image.open(src).convert("RGB"))
    assert out.shape == original.shape
    assert np.abs(out.astype(int) - original.astype(int)).mean() > 10
    assert "1 face" in report and "classic teacher" in report and "line 0.80" in report
    assert len(before_after) == 2
    saved = list((Path(data) / "outputs").glob("*.png"))
    assert [Path(download).name] == [p.name for p in saved] and "noir" in saved[0].name


def test_bad_input_is_an_error_and_the_server_keeps_serving(client, tmp_path, media_dir):
    lowres = handle_file(str(media_dir / "images" / "lowres_240p_01.jpg"))
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    with pytest.raises(Exception) as exc:
        client.predict(image=handle_file(str(bad)), api_name="/stylize")
    # gradio reads the header on upload ("cannot identify image file"); either way the reason is given
    assert any(t in str(exc.value) for t in ("cannot identify image", "not an image", "Can't use this file"))
    with pytest.raises(Exception, match="Upload a photo"):
        client.predict(image=None, api_name="/stylize")
    with pytest.raises(Exception, match=r"warp must be a number in \[0, 1\]"):
        client.predict(image=lowres, warp=3.0, api_name="/stylize")
    with pytest.raises(Exception, match="no-such-model"):  # names the missing model
        client.predict(image=lowres, teacher="sd", api_name="/stylize")
    _, download, _ = client.predict(image=lowres, api_name="/stylize")
    assert Image.open(download).size == (427, 240)


def test_uploads_over_the_limit_are_refused(client, tmp_path, media_dir):
    big = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > MAX_UPLOAD_MB * 2**20
    with pytest.raises(Exception, match="(?i)size|large|limit"):
        client.predict(image=handle_file(str(big)), api_name="/stylize")
    _, download, _ = client.predict(image=handle_file(str(media_dir / "images" / "lowres_240p_01.jpg")),
                                    api_name="/stylize")
    assert Path(download).is_file()


def test_transparency_is_flattened_onto_white(client, tmp_path, media_dir):
    # The upload reaches studio.io.load_image untouched (gradio's own RGB conversion would turn
    # transparent pixels black), so the UI sees exactly what the CLI sees.
    rgb = np.asarray(Image.open(media_dir / "images" / "lowres_240p_01.jpg").convert("RGB"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:30, :, :] = 0  # a fully transparent (and black underneath) top band
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    (before, after), download, _ = client.predict(image=handle_file(str(path)), api_name="/stylize")
    before = np.asarray(Image.open(before).convert("RGB"))
    assert before.shape == rgb.shape and before[:24].min() > 200  # white, give or take the preview's webp
    assert Image.open(download).size == (rgb.shape[1], rgb.shape[0])


def test_a_handlers_inputs_are_the_components_named_by_its_parameters(client):
    """Every tab wires its handlers with `inputs_for`: the API's parameter names are the handler's, each bound to
    the component of that name; a parameter that names no component is refused when the page is built."""
    from dataclasses import dataclass

    from studio.ui.tabs import inputs_for

    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in api["/train_lora"]["parameters"]] == \
        ["kind", "name", "files", "base", "steps", "rank", "resolution", "resume"]
    assert [p["parameter_name"] for p in api["/convert_video"]["parameters"]][3:7] == \
        ["line", "texture", "color", "warp"]  # the sliders of a dict field, by factor name

    @dataclass
    class UI:
        name: object
        factors: dict

    ui = UI("name-box", {"line": "line-slider", "color": "color-slider"})

    def handler(color, name, progress=None):
        pass

    assert inputs_for(handler, ui) == ["color-slider", "name-box"]

    def typo(name, colour):
        pass

    with pytest.raises(TypeError, match="no component of UI is named colour"):
        inputs_for(typo, ui)


def test_the_api_is_typed_named_and_takes_the_characters_defaults(client, media_dir):
    """What gradio_client shows is what a client needs: outputs named (no `value_36`), the upload of /distill and
    /train_lora optional (the last upload is reused), step counts and ranks integers, characters any name (a saved
    one too), the video input described for people; and a factor left out of /stylize is the chosen character's
    own default, not the default character's slider value."""
    import re

    from studio.characters import load_character

    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name, endpoint in api.items():
        for r in endpoint["returns"]:
            assert not r["label"].startswith("value_"), (name, r)
    params = {name: {p["parameter_name"]: p for p in e["parameters"]} for name, e in api.items()}
    for name in ("/distill", "/train_lora"):
        assert params[name]["files"]["parameter_has_default"] and params[name]["files"]["parameter_default"] is None
    for name, param in (("/distill", "steps"), ("/distill", "pairs"), ("/train_lora", "steps"),
                        ("/train_lora", "rank"), ("/train_lora", "resolution"), ("/convert_video", "frames"),
                        ("/stylize", "steps"), ("/stylize", "seed")):
        assert params[name][param]["python_type"]["type"] == "int", (name, param)
        assert params[name][param]["type"]["type"] == "integer", (name, param)
    for name in ("/stylize", "/convert_video", "/distill"):
        character = params[name]["character"]
        assert character["python_type"]["type"] == "str" and "enum" not in character["type"]
        assert "saved in the Characters tab" in character["python_type"]["description"]
        if name != "/distill":
            for f in ("line", "texture", "color", "warp"):
                assert params[name][f]["parameter_default"] is None and "own default" in \
                    params[name][f]["python_type"]["description"]
    assert "video file" in params["/convert_video"]["video"]["python_type"]["description"]

    photo = media_dir / "images" / "lowres_240p_01.jpg"
    _, _, report = client.predict(image=handle_file(str(photo)), character="pastel", api_name="/stylize")
    factors = report.split("factors:", 1)[1].split("<br>")[0]
    used = dict(re.findall(r"(?<!_)\b(line|texture|color|warp) ([0-9.]+)", factors))
    pastel = load_character("pastel", load_config())
    assert {k: float(v) for k, v in used.items()} == {k: pytest.approx(getattr(pastel.defaults, k), abs=0.005)
                                                       for k in ("line", "texture", "color", "warp")}, report
    _, _, report = client.predict(image=handle_file(str(photo)), character="pastel", line=0.2, api_name="/stylize")
    assert "factors: line 0.20" in report  # a factor given is used as given
