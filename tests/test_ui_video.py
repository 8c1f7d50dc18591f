"""Video tab, driven through gradio_client against a real server: a short preview through the classic student,
and the refusal of a file that is not a video."""
import socket

import pytest

pytest.importorskip("gradio")
pytest.importorskip("av")
pytest.importorskip("onnxruntime")
from gradio_client import Client, handle_file  # noqa: E402

from studio.config import load_config  # noqa: E402
from studio.ui import build_app  # noqa: E402

CLIP = "child_glasses_chalkboard_720p.mp4"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(None, [f"data_dir={data}"])
    demo = build_app(cfg)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), data
    demo.close()


def test_convert_a_preview_through_the_student(app, media_dir):
    import av

    client, data = app
    src = media_dir / "videos" / CLIP
    if not src.is_file():
        pytest.skip(f"{src} not found")
    status, played, download, report = client.predict(
        video=handle_file(str(src)), character="classic", path="onnxruntime", line=0.6, texture=0.5, color=0.5,
        warp=0.3, frames=8, api_name="/convert_video")
    assert "done" in status, status
    played = played["video"] if isinstance(played, dict) else played
    for f in (played, download):
        with av.open(str(f)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 8
            assert (c.streams.video[0].width, c.streams.video[0].height) == (1280, 720)
    assert "**8 frames**" in report and "frames/s achieved" in report
    assert "Audio kept:" in report and "Track ids seen:" in report and "onnxruntime" in report
    saved = list((data / "videos").iterdir())
    assert [p.name for p in saved] == ["child_glasses_chalkboard_720p-classic.mp4"]  # no temporary left

    # "Contour lines" off: the same first frame without the teacher's outlines (darker where they were drawn)
    def first_frame(path):
        with av.open(str(path)) as c:
            return next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)

    lined = first_frame(played)
    status, plain, _, _ = client.predict(
        video=handle_file(str(src)), character="classic", path="onnxruntime", line=0.6, texture=0.5, color=0.5,
        warp=0.3, frames=1, contours=False, api_name="/convert_video")
    assert "done" in status, status
    plain = first_frame(plain["video"] if isinstance(plain, dict) else plain)
    lines = abs(lined - plain).max(axis=2) > 40
    assert 0.003 < lines.mean() < 0.2, lines.mean()
    assert (lined[lines].sum(axis=1) < plain[lines].sum(axis=1)).mean() > 0.8


def test_a_text_file_is_refused(app, tmp_path):
    """A .txt is refused by the upload's file types; a text file named .mp4 by the tab's own check."""
    client, data = app
    before = sorted((data / "videos").iterdir()) if (data / "videos").exists() else []
    common = dict(character="classic", path="onnxruntime", line=0.5, texture=0.5, color=0.5, warp=0.5, frames=8,
                  api_name="/convert_video")
    note = tmp_path / "notes.txt"
    note.write_text("not a video\n")
    with pytest.raises(Exception, match="Invalid file type"):
        client.predict(video=handle_file(str(note)), **common)
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video either\n")
    with pytest.raises(Exception, match="not a readable video"):
        client.predict(video=handle_file(str(fake)), **common)
    after = sorted((data / "videos").iterdir()) if (data / "videos").exists() else []
    assert after == before


def test_convert_video_reports_frames_and_stops_between_frames(tmp_path, media_dir):
    """The callbacks the tab uses: on_frame(done, total) after each frame; should_stop ends it, writing nothing."""
    from realtime.stream import Stream, StreamConfig
    from realtime.video import VideoCancelled, convert_video

    src = media_dir / "videos" / CLIP
    if not src.is_file():
        pytest.skip(f"{src} not found")
    cfg = load_config(None, [f"data_dir={tmp_path}"])
    stylize = Stream(cfg, StreamConfig(character="classic")).prepare()
    seen = []
    report = convert_video(src, tmp_path / "a.mp4", stylize, max_frames=3, progress=False,
                           on_frame=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)] and report.frames == 3
    with pytest.raises(VideoCancelled, match=r"stopped after \d+ frames"):
        convert_video(src, tmp_path / "b.mp4", stylize, max_frames=5, progress=False,
                      should_stop=lambda: len(seen) >= 5, on_frame=lambda done, total: seen.append(done))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_a_person_can_be_drawn_as_another_character(app, media_dir):
    """Track ids from a first run, then `0=noir`: the report names the assignment; a bad entry is refused."""
    client, data = app
    src = media_dir / "videos" / CLIP
    if not src.is_file():
        pytest.skip(f"{src} not found")
    common = dict(video=handle_file(str(src)), character="classic", path="onnxruntime", line=0.5, texture=0.5,
                  color=0.5, warp=0.5, frames=4, api_name="/convert_video")
    status, _, _, report = client.predict(assign="0=noir", **common)
    assert "done" in status, status
    assert "track 0 as noir" in report and "Track ids seen: 0" in report
    for bad, why in (("zero=noir", "is not TRACK=NAME"), ("0=nobody", "Unknown character 'nobody'")):
        with pytest.raises(Exception, match=why):
            client.predict(assign=bad, **common)
