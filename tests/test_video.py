"""Video files (realtime/video.py) on the real clips in ../shared/data/videos: frame count, size, frame timing and
audio kept (the stage clip's video starts 0.85 s after its audio), the error line for a file that is not a video,
a folder with a bad file in it, the JSON report's track ids, per-track characters and the teacher path.

The student runs on the first frames only (`--frames`); the whole-clip checks use an identity stylizer, so they
time the file handling, not the network."""
import contextlib
import io
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("onnxruntime")

from realtime import stream, video  # noqa: E402

PEDESTRIANS = "pedestrians_walking_faces_720p.mp4"  # 1280x720, 25 fps, 105 frames, AAC audio
STAGE = "stage_performer_lowlight_360p.mp4"  # 640x360, 29.97 fps, 275 frames; video starts 0.85 s after audio
PREVIEW = 12


def probe(path: Path) -> dict:
    """What a player sees: decoded frames and their timestamps, size, rate, stream starts and audio length."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [float(f.time) for f in c.decode(v)]
        out = {"frames": len(times), "times": times, "width": v.codec_context.width,
               "height": v.codec_context.height, "rate": v.average_rate, "video_start": times[0] if times else None}
    with av.open(str(path)) as c:
        audio = c.streams.audio
        out["audio"] = bool(audio)
        if audio:
            pkts = [p for p in c.demux(audio[0]) if p.dts is not None]
            out["audio_start"] = float(pkts[0].pts * pkts[0].time_base)
            out["audio_end"] = float((pkts[-1].pts + pkts[-1].duration) * pkts[-1].time_base)
            out["audio_packets"] = len(pkts)
    return out


def run(*argv) -> tuple[int, list[dict], str]:
    """`python -m realtime.video ARGV` in this process: (exit status, JSON reports, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = video.main([str(a) for a in argv])
    return rc, [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")], err.getvalue()


@pytest.fixture(scope="module")
def walk(video_clip, student, tmp_path_factory):
    """The pedestrians clip's first frames through the classic student: (input, output, report, stderr)."""
    src = video_clip(PEDESTRIANS)
    dst = tmp_path_factory.mktemp("walk") / "walk.mp4"
    rc, reports, err = run(src, dst, "--student", student, "--frames", PREVIEW, "--json")
    assert rc == 0, err
    return src, dst, reports[0], err


class Identity:
    """A stand-in for the student or teacher: each frame unchanged, no faces (realtime.stream.FrameRenderer)."""

    engine, teacher, finds_faces = None, "identity", True

    def __init__(self):
        self.shapes = []
        self.factors = {}

    def prepare(self, characters):
        pass

    def set_factors(self, factors):
        self.factors = factors

    def render(self, frame, faces, character):
        self.shapes.append(frame.shape)
        return frame, [], None

    def origins(self):
        return {}


def identity_stream(frames=None, **config):
    from studio import load_config

    cfg = load_config()
    return stream.Stream(cfg, stream.StreamConfig(**{"temporal": False, **config}), renderer=frames or Identity()).prepare()


def test_student_keeps_size_rate_timestamps_and_audio(walk):
    src, dst, report, err = walk
    got, ref = probe(dst), probe(src)
    assert got["frames"] == report["frames"] == PREVIEW
    assert (got["width"], got["height"]) == (ref["width"], ref["height"]) == (1280, 720)
    assert (report["width"], report["height"]) == (1280, 720)
    assert got["rate"] == ref["rate"] == 25 and report["input_fps"] == 25.0
    assert got["times"] == pytest.approx(ref["times"][:PREVIEW], abs=1e-6)
    assert report["audio"] is True and got["audio"]
    # The preview's audio is cut where its video ends (to within one AAC packet of 1024 samples).
    assert got["audio_start"] == pytest.approx(ref["audio_start"], abs=1e-3)
    assert got["audio_end"] == pytest.approx(PREVIEW / 25, abs=1024 / 48000 + 1e-3)
    # The default engine is auto: on a CPU the shipped student's int8 model, named in the report
    assert report["engine"] == "onnxruntime-int8" and report["teacher"] is None and report["character"] == "classic"
    assert report["fps"] > 0 and report["seconds"] > 0
    assert "frame" in err  # the tqdm progress bar went to stderr


def test_report_lists_face_track_ids(walk):
    report = walk[2]
    # Several pedestrians walk toward the camera from the first frame; each confirmed face has an id from 0.
    assert report["faces"] > PREVIEW
    assert report["tracks"] and report["tracks"][0] == 0
    assert all(isinstance(t, int) for t in report["tracks"]) and report["tracks"] == sorted(set(report["tracks"]))


def test_whole_clip_keeps_every_frame_its_timing_and_the_audio_offset(video_clip, tmp_path):
    src = video_clip(STAGE)
    dst = tmp_path / "stage.mp4"
    report = video.convert_video(src, dst, identity_stream(), progress=False)
    got, ref = probe(dst), probe(src)
    assert got["frames"] == ref["frames"] == report.frames == 275
    assert (got["width"], got["height"]) == (640, 360)
    assert got["rate"] == ref["rate"] == Fraction(2997, 100)
    assert got["times"] == pytest.approx(ref["times"], abs=1e-6)
    # The video stream starts 0.85 s after the audio in the input, and still does in the output.
    frame = 1 / 29.97
    assert ref["video_start"] - ref["audio_start"] == pytest.approx(0.844, abs=0.01)
    assert got["video_start"] == pytest.approx(ref["video_start"], abs=frame)
    assert got["audio_start"] == pytest.approx(ref["audio_start"], abs=frame)
    assert got["audio_packets"] == ref["audio_packets"] and got["audio_end"] == pytest.approx(ref["audio_end"])
    assert report.audio is True


def test_student_preview_keeps_the_audio_offset(video_clip, student, tmp_path):
    src = video_clip(STAGE)
    rc, (report,), err = run(src, tmp_path / "stage.mp4", "--student", student, "--frames", 20, "--json",
                             "--no-progress")
    assert rc == 0, err
    got, ref = probe(tmp_path / "stage.mp4"), probe(src)
    assert got["frames"] == report["frames"] == 20 and (got["width"], got["height"]) == (640, 360)
    offset = got["video_start"] - got["audio_start"]
    assert offset == pytest.approx(ref["video_start"] - ref["audio_start"], abs=1 / 29.97)
    assert err == ""  # --no-progress: nothing on stderr


def test_not_a_video_is_one_error_line(student, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("these are meeting notes, not a video\n")
    rc, reports, err = run(bad, tmp_path / "out.mp4", "--student", student, "--no-progress")
    assert rc == 1 and reports == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: not a readable video"), err
    assert not list(tmp_path.glob("*out.mp4"))  # no output and no temporary file left behind


def test_folder_converts_the_good_file_and_reports_the_bad_one(video_clip, student, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(video_clip(STAGE), folder / "stage.mp4")
    (folder / "broken.mov").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # a header and nothing else
    (folder / "readme.txt").write_text("not a video and not a video name: skipped")
    rc, reports, err = run(folder, tmp_path / "out", "--student", student, "--frames", 3, "--json", "--no-progress")
    assert rc == 1
    assert [r["input"] for r in reports] == [str(folder / "stage.mp4")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["stage.mp4"]
    assert probe(tmp_path / "out" / "stage.mp4")["frames"] == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {folder / 'broken.mov'}: "), err


def test_assigned_track_is_redrawn_only_where_that_person_is(walk, student, tmp_path):
    """`--assign 0=noir`: the person of track 0 gets the noir student (here a darker one, in the data dir), the
    rest of the frame stays as the classic student drew it."""
    pytest.importorskip("torch")
    from studio import load_config
    from studio.models.student_unet import StudentConfig, StudentUNet
    from studio.perception.faces import get_face_backend

    src, default, report, _ = walk
    noir = StudentUNet(StudentConfig(width=8))
    with __import__("torch").no_grad():
        noir.out.bias.fill_(-0.3)  # a visibly different student: everything 0.3 darker
    noir.save_pretrained(tmp_path / "data" / "students" / "noir")
    track = report["tracks"][0]
    dst = tmp_path / "assigned.mp4"
    rc, (assigned,), err = run(src, dst, "--student", student, "--frames", PREVIEW, "--json", "--no-progress",
                               "--assign", f"{track}=noir", "--set", f"data_dir={tmp_path / 'data'}")
    assert rc == 0, err
    assert assigned["assign"] == {str(track): "noir"} and assigned["tracks"] == report["tracks"]

    def frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    a, b, x = frames(default), frames(dst), frames(src)[:PREVIEW]
    changed = [np.abs(p.astype(np.int16) - q.astype(np.int16)).max(axis=2) > 40 for p, q in zip(a, b)]
    assert changed[0].mean() < 1e-3  # a face has no track id on its first frame: nobody is redrawn yet
    redrawn = [k for k in range(1, PREVIEW) if changed[k].mean() > 2e-3]
    assert len(redrawn) >= PREVIEW // 3, [round(float(c.mean()), 4) for c in changed]  # the person, while seen
    faces = get_face_backend("mediapipe", load_config().perception)
    for k in (redrawn[0], redrawn[-1]):
        near = np.zeros(changed[k].shape, bool)  # redrawn only near a face: its person, head to feet
        for f in faces.detect(x[k]):
            w, h = f.box.width, f.box.height
            near[max(0, int(f.box.y0 - 2.5 * h)):int(f.box.y1 + 8 * h),
                 max(0, int(f.box.x0 - 3 * w)):int(f.box.x1 + 3 * w)] = True
        assert changed[k][~near].mean() < 1e-3, k
        assert changed[k].sum() < 0.5 * near.sum()  # one person among several, not every one near a face


def test_teacher_path(video_clip, tmp_path):
    src = video_clip(STAGE)
    rc, (report,), err = run(src, tmp_path / "t.mp4", "--teacher", "classic", "--frames", 2, "--json",
                             "--no-progress")
    assert rc == 0, err
    assert report["teacher"] == "classic" and report["engine"] is None
    got = probe(tmp_path / "t.mp4")
    assert got["frames"] == 2 and (got["width"], got["height"]) == (640, 360) and got["audio"]


def test_engine_and_teacher_exclude_each_other_and_bad_assignments_are_refused(tmp_path, capsys):
    for argv in (["--engine", "torch", "--teacher", "classic"], ["--assign", "zero=noir"], ["--frames", "0"]):
        with pytest.raises(SystemExit) as exc:
            video.parse_args(["in.mp4", "out.mp4", *argv])
        assert exc.value.code == 2
    rc, _, err = run(tmp_path / "in.mp4", tmp_path / "out.mp4", "--teacher", "classic", "--assign", "0=nobody")
    assert rc == 2 and err.startswith("error: unknown character 'nobody'"), err


def test_display_rotation_is_undone_for_the_stylizer_and_kept(tmp_path):
    """A phone clip stored sideways with a display rotation: faces are looked for upright, the output plays the
    same way (a synthetic clip: none of the shared clips carries a rotation)."""
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(90)
        for i in range(3):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:, :16] = 255
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 10)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    frames = Identity()
    video.convert_video(src, tmp_path / "out.mp4", identity_stream(frames), progress=False)
    assert frames.shapes == [(64, 32, 3)] * 3  # upright: taller than wide
    with av.open(str(tmp_path / "out.mp4")) as c:
        f = next(c.decode(video=0))
        assert (f.rotation, f.width, f.height) == (90, 64, 32)
        assert f.to_ndarray(format="rgb24")[16, 4, 0] > 200 and f.to_ndarray(format="rgb24")[16, 40, 0] < 50


def test_person_regions_split_people_between_faces():
    from studio.types import Box

    boxes = [Box(100, 50, 140, 100), Box(300, 60, 340, 110)]
    person = np.ones((400, 480), np.float32)
    left, right = stream.person_regions((400, 480), boxes, person)
    assert left[75, 120] > 0.9 and right[75, 120] < 0.1  # each face is its own person's
    assert left[250, 120] > 0.9 and right[250, 320] > 0.9  # the body below the face too
    assert left[75, 320] < 0.1 and left[380, 470] < 0.1  # not the other person, nor far away
    assert right[75, 120] < 0.1


def test_a_characters_per_person_list_is_read_or_refused_in_one_line():
    from realtime.video import parse_assignments

    known = ["classic", "noir", "pastel"]
    assert parse_assignments("0=noir, 2=pastel; 3 = classic", known) == {0: "noir", 2: "pastel", 3: "classic"}
    assert parse_assignments("", known) == {} and parse_assignments(None, known) == {}
    for bad, why in (("0=", "TRACK=NAME"), ("x=noir", "TRACK=NAME"), ("1=hero", "Unknown character 'hero'")):
        with pytest.raises(ValueError, match=why):
            parse_assignments(bad, known)
