"""Live webcam sessions (realtime.live), without a browser: sessions are bounded and freed, output frames do not
pile up, "characters per person" reaches the stream, people are numbered on the picture, large frames are
downscaled, and a character without a student is refused with the reason. The page itself: tests/test_ui_webcam.py.
"""
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from realtime import live  # noqa: E402
from studio.config import load_config  # noqa: E402


def wait(condition, what, timeout: float):
    """Poll `condition` until true; `what` (a str, or a function giving one at the time of failure) says what
    was waited for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(0.2)


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
    monkeypatch.setattr(live, "open_stream", lambda cfg, character, factors: FakeStream(character))
    monkeypatch.setattr(live, "FILES_GRACE_S", 0.3)
    sessions = live.WebcamSessions(load_config(), str(tmp_path), limit=2, idle_s=60)
    settings = dict(character="classic", line=0.5, texture=0.5, color=0.5, warp=0.5)
    a = sessions.get("a", settings)
    assert sessions.get("a", settings) is a and a.stream.updates == []  # the same stream, nothing changed
    sessions.get("a", {**settings, "line": 0.9})
    assert a.stream.updates == [{"line": 0.9}]  # only what changed reaches the stream
    sessions.get("b", settings)
    with pytest.raises(live.SessionsFull, match="2 webcam sessions are already streaming"):
        sessions.get("c", settings)
    a.last_seen -= 120  # a page that stopped sending frames gives its place up to a new one
    sessions.get("c", settings)
    assert a.stream.stopped and a.closed
    assert a.folder.exists()  # its last frames stay a moment: the closing page may still fetch one
    wait(lambda: not a.folder.exists(), "its frames to be removed after the grace time", 5)
    assert sorted(sessions._sessions) == ["b", "c"]

    frame = np.full((48, 64, 3), 128, np.uint8)
    c = sessions._sessions["c"]
    paths = [live.write_frame(c, frame) for _ in range(live.KEEP_FRAMES + 5)]
    assert len(set(paths)) == len(paths)  # a new name each time: the page never shows a cached older frame
    assert sorted(p.name for p in c.folder.iterdir()) == [Path(p).name for p in paths[-live.KEEP_FRAMES:]]
    sessions.close("c")
    assert live.write_frame(c, frame) is None  # a frame finishing after the close is not written
    assert sorted(p.name for p in c.folder.iterdir()) == [Path(p).name for p in paths[-live.KEEP_FRAMES:]]
    wait(lambda: not c.folder.exists(), "its frames to be removed after the grace time", 5)
    # A frame of the closed page that was still on its way (gradio runs it after the page's unload) opens nothing
    assert sessions.get("c", settings) is None and sorted(sessions._sessions) == ["b"]
    b = sessions._sessions["b"]
    sessions.close_all()  # the studio shutting down: nothing waits
    assert len(sessions) == 0 and not b.folder.exists()


def test_characters_per_person_reach_the_stream(tmp_path, monkeypatch):
    """The "Characters per person" list: parsed with every frame (a list still being typed keeps the last valid
    one), passed to the stream when it changes, and applied to a stream opened with it."""
    monkeypatch.setattr(live, "open_stream", lambda cfg, character, factors: FakeStream(character))
    cfg = load_config()
    sessions = live.WebcamSessions(cfg, str(tmp_path), limit=2)
    settings = dict(character="classic", line=0.5, texture=0.5, color=0.5, warp=0.5, assign=())
    a = sessions.get("a", settings)
    assert a.stream.updates == []
    cast = live.parse_cast("2=noir; 0 = pastel", cfg)
    assert cast == ((0, "pastel"), (2, "noir"))
    assert live.parse_cast("2=noir, 0=", cfg, cast) == cast  # halfway through typing: the last valid list
    assert live.parse_cast("1=nobody", cfg, cast) == cast
    assert live.parse_cast("", cfg, cast) == ()  # emptied: everyone is the page's character again
    monkeypatch.setattr(live, "missing_student", lambda cfg, name: "no student" if name == "noir" else None)
    assert live.parse_cast("0=pastel, 1=noir", cfg, cast) == cast  # one the stream cannot draw: kept as it was
    monkeypatch.undo()
    monkeypatch.setattr(live, "open_stream", lambda cfg, character, factors: FakeStream(character))
    sessions.get("a", {**settings, "assign": cast})
    assert a.stream.updates == [{"assign": {0: "pastel", 2: "noir"}}]
    assert sessions.settings("a")["assign"] == cast
    b = sessions.get("b", {**settings, "assign": ((1, "noir"),)})  # a stream opened with a list gets it at once
    assert b.stream.updates == [{"assign": {1: "noir"}}]


def test_people_are_numbered_on_the_picture_and_in_the_readout():
    from studio.perception.tracking import Track
    from studio.types import Box, Face

    img = np.full((240, 320, 3), 200, np.uint8)
    tracks = [Track(3, Face(box=Box(100, 80, 160, 150), score=0.9)),
              Track(None, Face(box=Box(10, 10, 40, 40), score=0.9))]
    out = live.label_people(img, tracks)
    assert np.array_equal(img, np.full((240, 320, 3), 200, np.uint8))  # a copy
    changed = np.abs(out.astype(int) - img).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert 90 <= xs.min() and xs.max() < 200 and ys.max() < 80  # just above the numbered face
    assert not changed[:, :60].any()  # the unconfirmed track has no number yet


def test_large_frames_are_downscaled_to_720p():
    assert live.bound_size(np.zeros((1080, 1920, 3), np.uint8)).shape == (720, 1280, 3)
    assert live.bound_size(np.zeros((1920, 1080, 3), np.uint8)).shape == (1280, 720, 3)
    assert live.bound_size(np.zeros((2160, 2160, 3), np.uint8)).shape == (720, 720, 3)
    small = np.zeros((480, 640, 3), np.uint8)
    assert live.bound_size(small) is small


def test_a_character_without_a_student_is_refused(tmp_path):
    (tmp_path / "characters").mkdir()
    noir = Path(__file__).resolve().parents[1] / "configs" / "characters" / "noir.yaml"
    (tmp_path / "characters" / "sketchy.yaml").write_text(noir.read_text().replace("Noir action", "Sketchy"))
    cfg = load_config(None, [f"data_dir={tmp_path}"])
    assert "'sketchy' has no realtime student yet: train one in the Distill tab" in live.missing_student(cfg, "sketchy")
    assert live.missing_student(cfg, "classic") is None
    sessions = live.WebcamSessions(cfg, str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="'sketchy' has no realtime student yet"):
        sessions.get("a", dict(character="sketchy", line=0.5, texture=0.5, color=0.5, warp=0.5))
    assert len(sessions) == 0


def test_the_users_own_student_wins_over_the_shipped_one_and_is_named(tmp_path):
    """A student trained in the Distill tab (<data_dir>/students/<name>/) is the one that runs for that character,
    also a built-in one, and reports say which ran."""
    import shutil

    from realtime.student import student_folder, student_origin

    cfg = load_config(None, [f"data_dir={tmp_path}"])
    shipped = student_folder(cfg, "classic")
    assert student_origin(cfg, shipped) == "the shipped student"
    mine = tmp_path / "students" / "classic"
    mine.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(shipped / name, mine / name)
    assert student_folder(cfg, "classic") == mine
    assert student_origin(cfg, mine).startswith("your student (classic, trained ")
    assert student_folder(cfg, "noir") != mine.parent / "noir"  # other characters keep the shipped ones
