"""Characters and LoRA tabs, driven through gradio_client against a real server (tiny SD pipeline)."""
import socket
import time

import pytest

pytest.importorskip("gradio")
pytest.importorskip("diffusers")
from gradio_client import Client, handle_file  # noqa: E402

from studio.config import load_config  # noqa: E402
from studio.ui import build_app  # noqa: E402

REFS = ["portrait_light_skin_asian_01.jpg", "portrait_medium_skin_01.jpg", "portrait_dark_skin_01.jpg"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from studio.tiny_sd import write_tiny_sd

    tiny = write_tiny_sd(tmp_path_factory.mktemp("tiny"))
    data = tmp_path_factory.mktemp("data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(None, [f"data_dir={data}", f"sd.base={tiny}", "sd.controlnets=[]", "sd.device=cpu"])
    demo = build_app(cfg)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), data, tiny
    demo.close()


def test_fit_preview_and_save_a_character(app, media_dir):
    client, data, _ = app
    files = [handle_file(str(media_dir / "images" / n)) for n in REFS]
    swatches, profile = client.predict(files=files, name="Hana", base="pastel", api_name="/fit_character")
    assert swatches.count("background:#") >= 16 + 5 and "3 references" in profile
    preview = client.predict(sample=handle_file(str(media_dir / "images" / "lowres_240p_01.jpg")),
                             api_name="/preview_character")
    assert preview
    status = client.predict(api_name="/save_character")
    status = status[0] if isinstance(status, (list, tuple)) else status
    assert "Saved" in status and (data / "characters" / "Hana" / "character.yaml").is_file()


def test_train_a_user_lora_in_the_background(app, media_dir):
    client, data, _ = app
    files = [handle_file(str(media_dir / "images" / n)) for n in REFS]
    t0 = time.time()
    status = client.predict(kind="user", name="ana", files=files, steps=3, rank=4, resolution=64, resume=False,
                            api_name="/train_lora")
    assert "done" in status, status
    assert (data / "loras" / "user" / "ana" / "lora.safetensors").is_file()
    assert len(list((data / "datasets" / "user" / "ana").iterdir())) == 3
    assert time.time() - t0 < 120
