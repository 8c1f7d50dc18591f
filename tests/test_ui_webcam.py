"""Webcam tab. In a real headless Chromium with a fake camera (a few seconds of a shared clip as .y4m): stylised
frames arrive, each differs from the very frame sent for it, the readout shows the frames/s, a character change
applies while streaming, and the page's stream is freed when the page closes (and stays freed); a refused
camera is explained, also when the page asked for it before the tab was shown.
The sessions behind the page, without a browser: tests/test_live.py.

    .venv/bin/python -m pytest -q tests/test_ui_webcam.py      (about 40 s; needs Debian's chromium)

`make test` installs chromium when it is missing (as root, with apt-get); without it the browser tests skip.
"""
import re
import shutil
import time

import pytest

gr = pytest.importorskip("gradio")
pytest.importorskip("av")
pytest.importorskip("onnxruntime")

from test_live import wait  # noqa: E402

from realtime import live  # noqa: E402
from studio.config import load_config  # noqa: E402
from studio.ui import build_app, launch  # noqa: E402
from studio.ui.tabs import webcam  # noqa: E402
from tools.webcam_latency import (CLIP, Browser, camera_flags, free_port, make_y4m, open_webcam_tab,  # noqa: E402
                                  page_state, sent_vs_received, start_recording)

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: `apt-get install -y chromium` (make test installs it when run as root)")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    cfg = load_config(None, [f"data_dir={data}", "server.host=127.0.0.1", f"server.port={port}"])
    app = build_app(cfg)
    launch(app, cfg, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", app
    app.close()


@pytest.fixture(scope="module")
def camera(tmp_path_factory, media_dir):
    src = media_dir / "videos" / CLIP
    if not src.is_file():
        pytest.skip(f"{src} not found")
    return make_y4m(src, tmp_path_factory.mktemp("camera") / "camera.y4m", seconds=3.0, size=(640, 360))


@needs_chromium
def test_webcam_streams_stylised_frames_in_a_browser(studio, camera):
    url, app = studio
    ctx = app.toonlab_context
    b = Browser(CHROMIUM, 1400, 1000, camera_flags(camera))
    try:
        open_webcam_tab(b, url)
        start_recording(b)
        b.wait_for("window.__webcam.loads.length >= 6", "six stylised frames in the page", 60)

        loads = page_state(b)["loads"]
        # New frames, in order. A number may repeat once, never go back: seen once in a full-suite run (7 frames
        # loaded, 6 numbers), the same frame answered twice or its file loaded twice; the page now counts a file once.
        ks = [x["k"] for x in loads]
        assert ks == sorted(ks) and len(set(ks)) >= len(ks) - 1, ks
        assert (loads[-1]["w"], loads[-1]["h"]) == (640, 360)
        # Paired by the number stamped into the frame sent: the output is that frame stylised, not the frame
        # itself (copied back it differs by about 0.3 grey levels, JPEG's own loss)
        pair = sent_vs_received(b)
        assert pair["same"] > 6.0, pair

        b.wait_for("/[0-9.]+ fps/.test(document.querySelector('#webcam-readout').innerText)", "the fps readout", 10)
        readout = b.js("document.querySelector('#webcam-readout').innerText")
        fps = float(re.search(r"([0-9.]+) fps", readout).group(1))
        assert fps > 0, readout
        assert "ms per frame on the server" in readout and "640×360" in readout

        # Live change: the character (and the sliders it resets) reach the running stream with the next frames
        (session,) = ctx.webcam._sessions.values()
        assert session.settings["character"] == "classic"
        b.pick("#webcam-character", "Noir")
        wait(lambda: session.settings["character"] == "noir" and session.settings["line"] == 0.8,
             "the stream to draw noir with noir's line factor", 20)
        assert session.stream.character == "noir"
        seen = len(page_state(b)["loads"])
        b.wait_for(f"window.__webcam.loads.length >= {seen + 2}", "frames after the change", 20)
        assert len(list(session.folder.iterdir())) <= live.KEEP_FRAMES

        # Characters per person: the person's number is in the readout; a list typed in reaches the stream
        b.wait_for("/People in the picture: #0/.test(document.querySelector('#webcam-readout').innerText)",
                   "the person's number in the readout", 20)
        b.click("#webcam-assign textarea")
        b.call("Input.insertText", text="0=pastel")
        wait(lambda: session.settings.get("assign") == ((0, "pastel"),), "the list to reach the stream", 20)
        assert session.stream.cast.by_track == {0: "pastel"}

        # The four-cut booth: four shots of the live stylised camera (no countdown here) on one downloadable page
        b.click("#webcam-booth button.label-wrap")
        b.wait_for("!!document.querySelector('#webcam-booth-button')", "the booth's controls", 10)
        b.type_into("#webcam-booth-countdown input[type=number]", "0")
        b.call("Input.dispatchKeyEvent", type="keyDown", key="Tab")
        b.click("#webcam-booth-button")
        b.wait_for("!!document.querySelector('#webcam-booth-page img')", "the four-cut page", 60)
        assert "Done" in b.js("document.querySelector('#webcam-booth-status').innerText")
        (saved,) = (ctx.cfg.resolve(ctx.cfg.data_dir) / "outputs").glob("*-booth-*.png")
        from PIL import Image

        w, h = Image.open(saved).size
        assert h > 2 * w, (w, h)  # the strip: four panels one above the other
        # Stop: no frame arrives any more, and the readout is cleared (no fps or people of a stream that ended)
        b.click("#webcam-input button.capture-button")
        b.wait_for(f"document.querySelector('#webcam-readout').innerText.trim() === {webcam.NOT_STREAMING!r}",
                   "the readout to be cleared after Stop", webcam.STOPPED_AFTER + 10)
    finally:
        b.close()
    # Closing the page ends its session: the stream and its frames are freed
    wait(lambda: len(ctx.webcam) == 0, lambda: "the closed page's stream to be freed (still open: "
         + ("its own session" if session in ctx.webcam._sessions.values() else "another session") + ")", 20)
    wait(lambda: not session.folder.exists(), "its frames to be removed", live.FILES_GRACE_S + 10)
    # ... and stays freed: a frame of the page that gradio still runs after the page's unload opens no new stream
    # (one possible cause of a CI failure of the wait above; not reproduced here, where it passes either way)
    time.sleep(2.0)
    assert len(ctx.webcam) == 0, list(ctx.webcam._sessions)


@needs_chromium
def test_a_refused_camera_is_explained(studio, camera):
    url, _ = studio
    b = Browser(CHROMIUM, 1400, 1000, camera_flags(camera, deny=True))
    try:
        open_webcam_tab(b, url)  # clicks the camera box as soon as it shows: the watcher is in the page's head
        try:
            b.wait_for("document.querySelector('#webcam-camera-status')?.innerText.includes('refused the camera')",
                       "the refusal to be explained", 15)
        except TimeoutError as exc:
            seen = b.js("JSON.stringify({watcher: window.__toonlabCamera || null, "
                        "status: document.querySelector('#webcam-camera-status')?.innerText})")
            raise TimeoutError(f"{exc}; in the page: {seen}") from None
    finally:
        b.close()


@needs_chromium
def test_a_camera_refused_before_the_tab_shows_is_explained_when_it_shows(studio, camera):
    """The watcher runs from the page's head: a camera request the page makes before the Webcam tab has been shown
    (or before the tab's own script has run) is still explained once the tab shows."""
    url, _ = studio
    b = Browser(CHROMIUM, 1400, 1000, camera_flags(camera, deny=True))
    try:
        b.call("Page.enable")
        b.call("Page.navigate", url=url)
        b.wait_for("!!document.querySelector('#stylize-button')", f"the studio at {url}", 60)
        assert b.js("navigator.mediaDevices.getUserMedia({video: true}).then(() => 'opened', e => e.name)") \
            == "NotAllowedError"
        b.js("[...document.querySelectorAll('button[role=tab]')].find(e => e.innerText.trim() === 'Webcam').click()")
        b.wait_for("document.querySelector('#webcam-camera-status')?.innerText.includes('refused the camera')",
                   "the earlier refusal to be explained", 15)
    finally:
        b.close()


def test_the_readout_lists_the_people_and_the_engine():
    text = webcam.readout_text(7.5, {"stages": {}, "engine": "onnxruntime-int8 on CPUExecutionProvider"},
                               [120.0], (640, 360), [0, 3])
    assert "onnxruntime-int8 on CPUExecutionProvider" in text
    assert "People in the picture: **#0**, **#3**" in text and "7.5 fps" in text
    text = webcam.readout_text(None, {"stages": {}}, [120.0], (640, 360))
    assert "People in the picture: none found" in text and "measuring fps" in text and "0.0 fps" not in text


def test_the_readout_is_cleared_once_frames_stop():
    from types import SimpleNamespace

    session = SimpleNamespace(frame_times=[10.0, 10.1, 10.2], stopped_said=False)
    assert webcam.stopped_text(session, 10.2 + webcam.STOPPED_AFTER / 2) is None  # frames still arrive
    assert webcam.stopped_text(session, 10.2 + webcam.STOPPED_AFTER) == webcam.NOT_STREAMING
    assert webcam.stopped_text(session, 20.0) is None  # said once per stop
    assert webcam.stopped_text(None, 20.0) is None and webcam.stopped_text(
        SimpleNamespace(frame_times=[], stopped_said=False), 20.0) is None  # never streamed: nothing to clear


def test_the_fps_is_rolling_and_steady():
    from realtime.live import rolling_fps

    times = [i * 0.125 for i in range(40)]  # 8 frames/s for 5 s
    assert rolling_fps(times, times[-1]) == pytest.approx(8.0)
    assert rolling_fps(times[:2], times[1]) is None  # too few frames to tell: not "0.0"
    assert rolling_fps(times, times[-1] + 10) is None  # nothing in the last seconds
