"""`python -m realtime.camera` (realtime/camera.py) without a camera: a shared clip stands in for it (`--input`).
Stylised frames recorded with the fps line shown, the four-cut booth page, the one-line errors (no virtual camera
device, no camera, no such file, unknown character, a character without a student), and the loops on plain
iterables: Ctrl-C stops cleanly, a source that ends before the fourth shot is an error."""
import contextlib
import glob
import io
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("onnxruntime")

from realtime import camera  # noqa: E402
from realtime.stream import Stream, StreamConfig  # noqa: E402
from studio.booth import booth_layout  # noqa: E402
from studio.config import load_config  # noqa: E402

CLIP = "stage_performer_lowlight_360p.mp4"  # 640x360: the student is quick on it
FRAMES = 6


def run(*argv) -> tuple[int, str, str]:
    """`python -m realtime.camera ARGV` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = camera.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def decode(path: Path, limit: int = 10_000) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(limit), c.decode(video=0))]


def test_recording_from_a_clip_is_stylised_and_shows_the_fps_line(video_clip, student, tmp_path):
    src, dst = video_clip(CLIP), tmp_path / "camera.mp4"
    rc, out, err = run("--input", src, "--student", student, "--frames", FRAMES, "--out", dst, "--no-window")
    assert rc == 0, err
    assert f"{FRAMES} frames in" in out and str(dst) in out
    status = err.split("\r")[1:]  # the fps line, rewritten in place
    assert status and "fps" in status[-1] and f"frame {FRAMES}" in status[-1] and "people" in status[-1]
    inputs, outputs = decode(src, FRAMES), decode(dst)
    assert len(outputs) == FRAMES and outputs[0].shape == inputs[0].shape
    for a, b in zip(inputs, outputs):
        assert np.abs(a.astype(int) - b).mean() > 5  # stylised, not copied
    assert not list(tmp_path.glob(".tmp-*"))


def test_booth_from_a_clip_writes_the_page(video_clip, student, tmp_path):
    dst = tmp_path / "booth.png"
    rc, out, err = run("--input", video_clip(CLIP), "--student", student, "--booth", "--countdown", 0,
                       "--layout", "grid", "--caption", "하나", "two", "--title", "Toonlab", "--out", dst, "--no-window")
    assert rc == 0, err
    assert "shot 4/4: taken" in err and str(dst) in out
    from studio.io import load_image

    page = load_image(dst)
    geo = booth_layout("grid", captions=True, title=True)
    assert page.shape == (geo.size[1], geo.size[0], 3)
    for x0, y0, x1, y1 in geo.panels:
        panel = page[y0:y1, x0:x1]
        assert (panel[:3] < 60).all() and panel[3:-3, 3:-3].std() > 10  # the border, a picture inside it


def loopback_devices() -> bool:
    return not sys.platform.startswith("linux") or bool(glob.glob("/sys/devices/virtual/video4linux/video*"))


@pytest.mark.skipif(loopback_devices(), reason="a virtual camera device may exist here")
def test_virtual_cam_without_a_device_says_what_to_install(video_clip, student):
    pytest.importorskip("pyvirtualcam")
    rc, out, err = run("--input", video_clip(CLIP), "--student", student, "--virtual-cam", "--frames", 1,
                       "--no-window")
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no virtual camera device")
    assert "modprobe v4l2loopback" in lines[0] and "OBS" in lines[0]


def test_setup_errors_are_one_line(video_clip, tmp_path):
    clip = video_clip(CLIP)
    cases = [
        (["--input", tmp_path / "none.mp4", "--out", tmp_path / "o.mp4"],
         f"error: {tmp_path / 'none.mp4'}: no such file"),
        (["--input", __file__, "--out", tmp_path / "o.mp4"], "not a readable video"),
        (["--input", clip, "--character", "bogus", "--out", tmp_path / "o.mp4"],
         "error: unknown character 'bogus'; choices: classic, noir, pastel"),
        (["--input", clip, "--no-window"], "error: nothing to show the frames on: --no-window"),
    ]
    if sys.platform.startswith("linux") and not Path("/dev/video7").exists():
        cases.append((["--device", 7, "--out", tmp_path / "o.mp4"], "error: no camera at /dev/video7"))
    (tmp_path / "data" / "characters").mkdir(parents=True)  # a user character nobody has trained a student for
    noir = Path(__file__).resolve().parents[1] / "configs" / "characters" / "noir.yaml"
    (tmp_path / "data" / "characters" / "sketchy.yaml").write_text(noir.read_text())
    cases.append((["--input", clip, "--character", "sketchy", "--out", tmp_path / "o.mp4", "--set",
                   f"data_dir={tmp_path / 'data'}"], "'sketchy' has no realtime student yet"))
    for argv, message in cases:
        rc, _, err = run(*argv)
        assert rc == 2 and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert not (tmp_path / "o.mp4").exists()


class Identity:
    """A stand-in renderer: each frame unchanged, no faces (realtime.renderers.FrameRenderer)."""

    engine, teacher, finds_faces = None, "identity", True
    factors: dict = {}

    def prepare(self, characters):
        pass

    def render(self, frame, faces, character):
        return frame, [], None

    def origins(self):
        return {}


def identity_stream() -> Stream:
    return Stream(load_config(), StreamConfig(live=True, temporal=False), renderer=Identity()).prepare()


def test_the_live_loop_takes_any_iterable_and_stops_cleanly_at_ctrl_c():
    def frames():  # a camera that gets Ctrl-C after three frames
        for i in range(3):
            yield np.full((48, 64, 3), 40 * i, np.uint8)
        raise KeyboardInterrupt

    seen, status = [], io.StringIO()
    done = camera.run_live(identity_stream(), frames(), [seen.append], status=camera.FpsLine(status, every=0.0))
    assert done == 3 and [int(f[0, 0, 0]) for f in seen] == [0, 40, 80]
    assert status.getvalue().count("\r") == 3 and status.getvalue().endswith("\n")
    closing = [np.zeros((48, 64, 3), np.uint8)] * 5  # a sink saying False (a closed window) ends the loop too
    assert camera.run_live(identity_stream(), closing, [lambda image: False]) == 1
    assert camera.run_live(identity_stream(), closing, [seen.append], max_frames=2) == 2


def test_shots_are_taken_from_any_iterable_and_a_short_one_is_an_error():
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(6)]
    said = []
    shots = camera.take_shots(identity_stream(), frames, countdown=0, say=said.append)
    assert [int(s.image[0, 0, 0]) for s in shots] == [0, 10, 20, 30]
    assert said[-1] == "shot 4/4: taken"
    with pytest.raises(camera.CameraError, match="the input ended after 3 of 4 shots"):
        camera.take_shots(identity_stream(), frames[:3], countdown=0, say=said.append)
