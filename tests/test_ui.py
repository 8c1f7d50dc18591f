"""The studio app, driven through gradio_client against a real server on 127.0.0.1."""
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from studio.config import load_config  # noqa: E402
from studio.ui import build_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    cfg = load_config(None, [f"data_dir={data}", f"server.port={port}"])
    app = build_app(cfg)
    assert not app.toonlab_context.stylizer_created  # nothing loads at build time
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=True,
               max_file_size="30mb")
    yield f"http://127.0.0.1:{port}/", data, app
    app.close()


def test_stylize_through_the_api(server, media_dir):
    url, data, app = server
    client = Client(url, verbose=False)
    src = media_dir / "images" / "portrait_light_skin_asian_01.jpg"
    before_after, download, report = client.predict(image=handle_file(str(src)), character="noir", line=0.8,
                                                    api_name="/stylize")
    out = np.asarray(Image.open(download).convert("RGB"))
    original = np.asarray(Image.open(src).convert("RGB"))
    assert out.shape == original.shape
    assert np.abs(out.astype(int) - original.astype(int)).mean() > 10
    assert "1 face" in report
    assert len(before_after) == 2
    saved = list((Path(data) / "outputs").glob("*.png"))
    assert len(saved) == 1 and "noir" in saved[0].name


def test_bad_input_is_an_error_and_the_server_keeps_serving(server, tmp_path, media_dir):
    url, _, _ = server
    client = Client(url, verbose=False)
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    with pytest.raises(Exception) as exc:
        client.predict(image=handle_file(str(bad)), api_name="/stylize")
    # gradio's image component refuses it before the handler ("cannot identify image file"); either way
    # the user gets the reason, not a generic failure
    assert any(t in str(exc.value) for t in ("cannot identify image", "not an image", "Can't use this file"))
    with pytest.raises(Exception, match="[Ww]arp|\\[0, 1\\]|range|maximum"):
        client.predict(image=handle_file(str(media_dir / "images" / "lowres_240p_01.jpg")), warp=3.0,
                       api_name="/stylize")
    _, download, _ = client.predict(image=handle_file(str(media_dir / "images" / "lowres_240p_01.jpg")),
                                    api_name="/stylize")
    assert Image.open(download).size == (427, 240)
