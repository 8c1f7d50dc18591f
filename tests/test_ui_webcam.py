"""Webcam tab. In a real headless Chromium with a fake camera (a few seconds of a shared clip as .y4m): stylised
frames arrive, each differs from the very frame sent for it, the readout shows the frames/s, a character change
applies while streaming, and the page's stream is freed when the page closes (and stays freed); a refused
camera is explained, also when the page asked for it before the tab was shown.
Without a browser: sessions are bounded and freed, output frames do not pile up, large frames are downscaled,
and a character without a student is refused with the reason.

    .venv/bin/python -m pytest -q tests/test_ui_webcam.py      (about 40 s; needs Debian's chromium)

`make test` installs chromium when it is missing (as root, with apt-get); without it the browser tests skip.
"""
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
pytest.importorskip("av")
pytest.importorskip("onnxruntime")

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


def wait(condition, what, timeout: float):
    """Poll `condition` until true; `what` (a str, or a function giving one at the time of failure) says what
    was waited for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(0.2)


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
        assert len(list(session.folder.iterdir())) <= webcam.KEEP_FRAMES

        # Characters per person: the person's number is in the readout; a list typed in reaches the stream
        b.wait_for("/People in the picture: 0/.test(document.querySelector('#webcam-readout').innerText)",
                   "the person's number in the readout", 20)
        b.click("#webcam-assign textarea")
        b.call("Input.insertText", text="0=pastel")
        wait(lambda: session.settings.get("assign") == ((0, "pastel"),), "the list to reach the stream", 20)
        assert session.stream.cast.by_track == {0: "pastel"}
    finally:
        b.close()
    # Closing the page ends its session: the stream and its frames are freed
    wait(lambda: len(ctx.webcam) == 0, lambda: "the closed page's stream to be freed (still open: "
         + ("its own session" if session in ctx.webcam._sessions.values() else "another session") + ")", 20)
    wait(lambda: not session.folder.exists(), "its frames to be removed", webcam.FILES_GRACE_S + 10)
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


class FakeStream:
    def __init__(self, character):
        self.character, self.updates, self.stopped = character, [], False

    def process(self, frame):
        from types import SimpleNamespace

        return SimpleNamespace(image=frame, tracks=[], timings={}, index=0)

    def update(self, **changed):
        self.updates.append(changed)

    def stats(self):
        return {"fps": 0.0, "stages": {}}

    def stop(self):
        self.stopped = True


def test_sessions_are_bounded_and_freed(tmp_path, monkeypatch):
    monkeypatch.setattr(webcam, "open_stream", lambda cfg, character, factors: FakeStream(character))
    monkeypatch.setattr(webcam, "FILES_GRACE_S", 0.3)
    sessions = webcam.WebcamSessions(load_config(), str(tmp_path), limit=2, idle_s=60)
    settings = dict(character="classic", line=0.5, texture=0.5, color=0.5, warp=0.5)
    a = sessions.get("a", settings)
    assert sessions.get("a", settings) is a and a.stream.updates == []  # the same stream, nothing changed
    sessions.get("a", {**settings, "line": 0.9})
    assert a.stream.updates == [{"line": 0.9}]  # only what changed reaches the stream
    sessions.get("b", settings)
    with pytest.raises(gr.Error, match="2 webcam sessions are already streaming"):
        sessions.get("c", settings)
    a.last_seen -= 120  # a page that stopped sending frames gives its place up to a new one
    sessions.get("c", settings)
    assert a.stream.stopped and a.closed
    assert a.folder.exists()  # its last frames stay a moment: the closing page may still fetch one
    wait(lambda: not a.folder.exists(), "its frames to be removed after the grace time", 5)
    assert sorted(sessions._sessions) == ["b", "c"]

    frame = np.full((48, 64, 3), 128, np.uint8)
    c = sessions._sessions["c"]
    paths = [webcam.write_frame(c, frame) for _ in range(webcam.KEEP_FRAMES + 5)]
    assert len(set(paths)) == len(paths)  # a new name each time: the page never shows a cached older frame
    assert sorted(p.name for p in c.folder.iterdir()) == [Path(p).name for p in paths[-webcam.KEEP_FRAMES:]]
    sessions.close("c")
    assert webcam.write_frame(c, frame) is None  # a frame finishing after the close is not written
    assert sorted(p.name for p in c.folder.iterdir()) == [Path(p).name for p in paths[-webcam.KEEP_FRAMES:]]
    wait(lambda: not c.folder.exists(), "its frames to be removed after the grace time", 5)
    # A frame of the closed page that was still on its way (gradio runs it after the page's unload) opens nothing
    assert sessions.get("c", settings) is None and sorted(sessions._sessions) == ["b"]
    b = sessions._sessions["b"]
    sessions.close_all()  # the studio shutting down: nothing waits
    assert len(sessions) == 0 and not b.folder.exists()


def test_characters_per_person_reach_the_stream(tmp_path, monkeypatch):
    """The "Characters per person" list: parsed with every frame (a list still being typed keeps the last valid
    one), passed to the stream when it changes, and applied to a stream opened with it."""
    monkeypatch.setattr(webcam, "open_stream", lambda cfg, character, factors: FakeStream(character))
    cfg = load_config()
    sessions = webcam.WebcamSessions(cfg, str(tmp_path), limit=2)
    settings = dict(character="classic", line=0.5, texture=0.5, color=0.5, warp=0.5, assign=())
    a = sessions.get("a", settings)
    assert a.stream.updates == []
    cast = webcam.parse_cast("2=noir; 0 = pastel", cfg)
    assert cast == ((0, "pastel"), (2, "noir"))
    assert webcam.parse_cast("2=noir, 0=", cfg, cast) == cast  # halfway through typing: the last valid list
    assert webcam.parse_cast("1=nobody", cfg, cast) == cast
    assert webcam.parse_cast("", cfg, cast) == ()  # emptied: everyone is the page's character again
    monkeypatch.setattr(webcam, "_student_notice", lambda cfg, name: "no student" if name == "noir" else None)
    assert webcam.parse_cast("0=pastel, 1=noir", cfg, cast) == cast  # one the stream cannot draw: kept as it was
    monkeypatch.undo()
    monkeypatch.setattr(webcam, "open_stream", lambda cfg, character, factors: FakeStream(character))
    sessions.get("a", {**settings, "assign": cast})
    assert a.stream.updates == [{"assign": {0: "pastel", 2: "noir"}}]
    assert sessions.settings("a")["assign"] == cast
    b = sessions.get("b", {**settings, "assign": ((1, "noir"),)})  # a stream opened with a list gets it at once
    assert b.stream.updates == [{"assign": {1: "noir"}}]


def test_people_are_numbered_on_the_picture_and_in_the_readout():
    from studio.perception.tracking import Track
    from studio.types import Box, Face

    img = np.full((240, 320, 3), 200, np.uint8)
    tracks = [Track(3, Face(box=Box(100, 80, 160, 150), score=0.9)), Track(None, Face(box=Box(10, 10, 40, 40), score=0.9))]
    out = webcam.label_people(img, tracks)
    assert np.array_equal(img, np.full((240, 320, 3), 200, np.uint8))  # a copy
    changed = np.abs(out.astype(int) - img).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert 90 <= xs.min() and xs.max() < 200 and ys.max() < 80  # just above the numbered face
    assert not changed[:, :60].any()  # the unconfirmed track has no number yet
    text = webcam.readout_text({"fps": 7.5, "stages": {}, "engine": "onnxruntime-int8 on CPUExecutionProvider"},
                               [120.0], (640, 360), [0, 3])
    assert "onnxruntime-int8 on CPUExecutionProvider" in text
    assert "People in the picture: **0**, **3**" in text and "7.5 fps" in text
    assert "People" not in webcam.readout_text({"fps": 7.5, "stages": {}}, [120.0], (640, 360))


def test_large_frames_are_downscaled_to_720p():
    assert webcam.bound_size(np.zeros((1080, 1920, 3), np.uint8)).shape == (720, 1280, 3)
    assert webcam.bound_size(np.zeros((1920, 1080, 3), np.uint8)).shape == (1280, 720, 3)
    assert webcam.bound_size(np.zeros((2160, 2160, 3), np.uint8)).shape == (720, 720, 3)
    small = np.zeros((480, 640, 3), np.uint8)
    assert webcam.bound_size(small) is small


def test_a_character_without_a_student_is_refused(tmp_path):
    (tmp_path / "characters").mkdir()
    noir = Path(__file__).resolve().parents[1] / "configs" / "characters" / "noir.yaml"
    (tmp_path / "characters" / "sketchy.yaml").write_text(noir.read_text().replace("Noir action", "Sketchy"))
    cfg = load_config(None, [f"data_dir={tmp_path}"])
    assert "No student for this character" in webcam._student_notice(cfg, "sketchy")
    assert webcam._student_notice(cfg, "classic") is None
    sessions = webcam.WebcamSessions(cfg, str(tmp_path / "cache"))
    with pytest.raises(gr.Error, match="no student for character 'sketchy'"):
        sessions.get("a", dict(character="sketchy", line=0.5, texture=0.5, color=0.5, warp=0.5))
    assert len(sessions) == 0
