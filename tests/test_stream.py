"""realtime.stream (pipelined stages, bounded queues, faces followed between detections) and realtime.temporal
(flow-guided blending, the flicker metric), on the real clips in ../shared/data/videos."""
import threading
import time

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("onnxruntime")

from test_imageops import at_offset  # noqa: E402

from realtime import stream as rs  # noqa: E402
from realtime.temporal import TemporalBlender, flicker, flickers  # noqa: E402
from studio import load_config  # noqa: E402
from studio.perception.tracking import FaceFollower  # noqa: E402

TALKING = "face_talking_glasses_vertical_720x1280.mp4"  # one face, 720x1280, 30 fps
PEDESTRIANS = "pedestrians_walking_faces_720p.mp4"


def decode(path, n, side=None):
    import cv2

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= n:
                break
            img = f.to_ndarray(format="rgb24")
            if side:
                h, w = img.shape[:2]
                s = side / max(h, w)
                img = cv2.resize(img, (round(w * s) // 4 * 4, round(h * s) // 4 * 4), interpolation=cv2.INTER_AREA)
            out.append(img)
    return out


@pytest.fixture(scope="module")
def talking(video_clip):
    return decode(video_clip(TALKING), 16, side=640)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


class Recorder:
    """A renderer that inverts the frame and notes which thread drew it (realtime.stream.FrameRenderer)."""

    engine, teacher, finds_faces = None, "recorder", True

    def __init__(self, delay=0.0, fail_at=None):
        self.delay, self.fail_at, self.calls, self.threads = delay, fail_at, 0, set()
        self.factors = {}

    def prepare(self, characters):
        pass

    def set_factors(self, factors):
        self.factors = dict(factors)

    def render(self, frame, faces, character):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and self.calls == self.fail_at:
            raise ValueError("this frame cannot be drawn")
        if self.delay:
            time.sleep(self.delay)
        return 255 - frame, [], None

    def origins(self):
        return {}


def test_pipelined_stream_gives_exactly_the_sequential_frames(cfg, talking):
    """The same frames through the real student, faces and temporal blending: one stage after another in this
    thread, or each stage in its own thread: identical images, tracks and order."""
    stream = rs.Stream(cfg, rs.StreamConfig(character="classic", detect_every=4)).prepare()
    seq = [stream.process(f) for f in talking]
    stream.reset()
    pip = list(stream.run(talking))
    assert [r.index for r in pip] == list(range(len(talking)))
    for a, b in zip(seq, pip):
        np.testing.assert_array_equal(a.image, b.image)
        assert [t.id for t in a.tracks] == [t.id for t in b.tracks]
    assert all(len(r.tracks) == 1 for r in pip)  # the one face, on every frame, followed or detected
    assert pip[-1].tracks[0].id == 0
    stats = stream.stats()
    assert stats["frames"] == len(talking) and stats["dropped"] == 0
    assert stats["detections"] == 4  # frames 0, 4, 8, 12: the face was followed in between, never lost
    assert set(stats["stages"]) == set(rs.STAGES) and all(v > 0 for v in stats["stages"].values())
    assert stats["latency_ms"] > 0 and set(pip[0].timings) == {*rs.STAGES, "latency"}
    assert not np.array_equal(pip[0].image, talking[0])  # stylised


@pytest.fixture(scope="module")
def pedestrians(video_clip):
    return decode(video_clip(PEDESTRIANS), 12, side=800)  # several faces, followed and detected again


def jitter(stream, seed: int, delay: float = 0.012):
    """Each stage of `stream` waits a random moment (0..`delay` s) and holds a few random-sized buffers while it
    runs: the threads interleave differently and the buffers the stage allocates land at other addresses. After
    each compose the blender's confidence map (the float weights that decide the blend) is kept in
    `stream.confidences`, by frame. Returns the stream."""
    rng = np.random.default_rng(seed)
    lock = threading.Lock()
    stream.confidences = {}
    for name in rs.STAGES:
        stage = stream._stages[name]

        def jittered(p, stage=stage, name=name):
            with lock:
                wait = float(rng.random()) * delay
                sizes = rng.integers(1, 4096, int(rng.integers(1, 8)))
            time.sleep(wait)
            held = [np.ones(int(n) * 8, np.uint8) for n in sizes]  # the stage's buffers start elsewhere
            out = stage(p)
            del held
            if name == "compose" and stream.blender is not None and stream.blender.confidence is not None:
                stream.confidences[p.index] = stream.blender.confidence.copy()
            return out

        stream._stages[name] = jittered
    return stream


def test_pipelined_frames_equal_sequential_under_random_stage_timing(cfg, pedestrians):
    """Every frame of the pipelined stream, and every blend weight behind it, equals the sequential one whatever
    the stages' timing and wherever their buffers land, with two streams on the same student running at once.
    (It failed before: cv2.magnitude takes another kernel for a 32-byte aligned output on AVX2 CPUs and differs
    in the last bit, so where numpy's heap put a buffer, which depends on how the stage threads interleave, moved
    the blend weights and now and then a line or a pixel; realtime.bench_stream stopped on it in 2 of 3 runs.)"""
    def make():
        return rs.Stream(cfg, rs.StreamConfig(character="classic", detect_every=3)).prepare()

    sequential = jitter(make(), seed=100, delay=0.0)
    reference = [sequential.process(f).image for f in pedestrians]
    assert len(sequential.confidences) >= len(pedestrians) - 2  # blended from the second frame on (no cut here)
    for seed in range(3):
        streams = [jitter(make(), 2 * seed + k) for k in range(2)]
        outputs: list = [None, None]

        def consume(k):
            outputs[k] = [r.image for r in streams[k].run(pedestrians)]

        threads = [threading.Thread(target=consume, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        for k, out in enumerate(outputs):
            assert out is not None and len(out) == len(reference), f"seed {seed}, stream {k}: no complete run"
            differ = [i for i, (a, b) in enumerate(zip(reference, out)) if not np.array_equal(a, b)]
            assert not differ, f"seed {seed}, stream {k}: frames {differ} differ from the sequential ones"
            conf = streams[k].confidences
            differ = [i for i in sequential.confidences if not np.array_equal(sequential.confidences[i], conf.get(i))]
            assert not differ, f"seed {seed}, stream {k}: the blend weights of frames {differ} differ"


def test_no_opencv_call_of_the_stream_depends_on_where_its_buffers_are(cfg, pedestrians, monkeypatch):
    """Every OpenCV call the stream makes on a frame (faces followed, student, ink, blending) is made again with
    its arrays, and its output, at other offsets from a 64-byte boundary: the results must not change. numpy
    promises 16-byte alignment only, and with stage threads allocating at once the offset a buffer gets is
    chance; cv2.magnitude failed this on AVX2 CPUs (studio.imageops). The LK flow's error output is left out:
    it is not written for lost points."""
    import cv2

    unused_outputs = {"calcOpticalFlowPyrLK": {2}}
    calls, moved = {}, {}

    def same(a, b, skip=()):
        if isinstance(a, np.ndarray):
            return np.array_equal(a, b)
        if isinstance(a, tuple):
            return all(i in skip or same(x, y) for i, (x, y) in enumerate(zip(a, b)))
        return True

    def checked(name, fn):
        def call(*args, **kw):
            before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]  # drawing draws in place
            out = fn(*args, **kw)
            if "dst" in kw or not any(isinstance(a, np.ndarray) for a in args):
                return out
            calls[name] = calls.get(name, 0) + 1
            for offset in (0, 16, 32, 48):
                args2 = [at_offset(a, offset) if isinstance(a, np.ndarray) and a.flags.c_contiguous else a
                         for a in before]
                again = None
                if isinstance(out, np.ndarray):
                    try:
                        again = fn(*args2, **kw, dst=at_offset(np.zeros_like(out), offset))
                    except (cv2.error, TypeError):
                        again = None
                if again is None:
                    again = fn(*args2, **kw)
                if not same(out, again, unused_outputs.get(name, ())):
                    moved.setdefault(name, set()).add(offset)
            return out
        return call

    for space, prefix in ((cv2, ""), (cv2.ximgproc, "ximgproc.")):
        for name in dir(space):
            fn = getattr(space, name)
            if type(fn).__name__ == "builtin_function_or_method" and not name.endswith("_create"):
                monkeypatch.setattr(space, name, checked(prefix + name, fn))
    stream = rs.Stream(cfg, rs.StreamConfig(character="classic", detect_every=2)).prepare()
    for frame in pedestrians[:4]:
        stream.process(frame)
    assert not moved, f"results depend on the buffers' addresses: {moved}"
    assert {"magnitude", "Sobel", "remap", "calcOpticalFlowPyrLK", "ximgproc.fastGlobalSmootherFilter"} - set(calls) \
        == {"magnitude"}  # the stream's calls were seen, and cv2.magnitude is no longer one of them


def test_a_1080p_frames_ink_is_the_same_for_any_opencv_thread_count(video_clip):
    """The contours of the frame where realtime.bench_stream found pipelined and sequential frames apart (1080p,
    frame 25 of its clip: 2 pixels a grey level apart in 3 of 5 runs): OpenCV's global smoother gave other last
    bits for another thread count, or beside another stage's call (studio.imageops.global_smooth; its own test)."""
    import cv2

    from realtime.student import contour_ink

    frame = cv2.resize(decode(video_clip(PEDESTRIANS), 26)[25], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    threads = cv2.getNumThreads()
    try:
        alphas = []
        for n in (1, 2, 3):
            cv2.setNumThreads(n)
            alphas.append(contour_ink(frame, [], 0.35, 1.0))
    finally:
        cv2.setNumThreads(threads)
    assert alphas[0].shape == frame.shape[:2] and alphas[0].max() > 0.5
    for alpha in alphas[1:]:
        np.testing.assert_array_equal(alpha, alphas[0])


def test_followed_landmarks_stay_on_the_face(cfg, talking):
    """Between detections the landmarks are carried by optical flow; they stay within a few percent of a face
    width of where a fresh detection puts them."""
    from studio.perception.faces import get_face_backend

    backend = get_face_backend("mediapipe", cfg.perception)
    follower = FaceFollower(backend, every=8)
    errors = []
    for i, frame in enumerate(talking[:8]):
        faces = follower(frame)
        if i == 0:
            continue
        fresh = backend.detect(frame)
        assert len(faces) == len(fresh) == 1
        width = fresh[0].box.width
        err = np.linalg.norm(faces[0].landmarks[:, :2] - fresh[0].landmarks[:, :2], axis=1)
        errors.append(np.median(err) / width)
        assert abs(faces[0].box.center[0] - fresh[0].box.center[0]) < 0.1 * width
    assert follower.detections == 1
    assert max(errors) < 0.03, errors


def test_following_the_drawn_points_is_as_close_as_following_all_478(cfg, talking):
    """The follower carries by flow only the mesh points the realtime step draws and warps from (148 of 478: a
    third of the flow's cost) and moves the others with their nearest; against fresh detections its landmarks are
    as close as when every point is followed (on the bench clips: 0.0040 against 0.0041-0.0043 face widths)."""
    from studio.perception.faces import get_face_backend

    backend = get_face_backend("mediapipe", cfg.perception)
    fresh = [backend.detect(frame) for frame in talking[:8]]
    errors = {}
    for features in (True, False):
        follower = FaceFollower(backend, every=8, features=features)
        err = []
        for i, frame in enumerate(talking[:8]):
            faces = follower(frame)
            if i:
                err.append(np.linalg.norm(faces[0].landmarks[:, :2] - fresh[i][0].landmarks[:, :2], axis=1).mean()
                           / fresh[i][0].box.width)
        assert follower.detections == 1
        errors[features] = float(np.mean(err))
    assert errors[True] < 1.1 * errors[False] + 1e-3, errors


def test_the_followed_points_are_every_point_the_realtime_step_reads():
    from studio.perception import faces as mesh
    from studio.perception.tracking import FOLLOWED, MESH_POINTS, _carried
    from studio.stylize import face_ink, face_warp

    read = set(mesh.FACE_OVAL + mesh.LEFT_EYE + mesh.RIGHT_EYE + mesh.LEFT_BROW + mesh.RIGHT_BROW + mesh.LIPS_OUTER
               + mesh.LIPS_INNER + mesh.NOSE + mesh.LEFT_IRIS + mesh.RIGHT_IRIS + mesh.NOSE_BOTTOM)
    read |= {face_ink.UPPER_LIP_TOP, face_warp.NOSE_TIP, face_warp.UPPER_LIP, face_warp.LOWER_LIP,
             face_warp.MOUTH_LEFT, face_warp.MOUTH_RIGHT, face_warp.CHIN, face_warp.LEFT_IRIS_CENTER,
             face_warp.RIGHT_IRIS_CENTER}
    assert read <= set(FOLLOWED)
    # The other points move with their neighbours: a whole-face shift moves them by exactly that shift.
    lm = np.random.default_rng(0).uniform(100, 300, (MESH_POINTS, 2)).astype(np.float32)
    p = lm[list(FOLLOWED)]
    moved = _carried(lm, p, p + np.float32([3.5, -2.0]))
    np.testing.assert_allclose(moved, lm + np.float32([3.5, -2.0]), atol=1e-4)


def test_a_lost_face_is_detected_again_at_once(cfg, talking):
    from studio.perception.faces import get_face_backend

    follower = FaceFollower(get_face_backend("mediapipe", cfg.perception), every=30)
    follower(talking[0])
    assert follower.detections == 1
    blank = np.zeros_like(talking[1])  # the face vanishes: its points cannot be followed
    assert follower(blank) == [] and follower.detections == 2
    follower(talking[2])  # nothing to follow: detect
    assert follower.detections == 3


def test_live_stream_drops_old_frames_and_keeps_its_queues_and_memory_bounded(cfg):
    """A producer much faster than the renderer: old frames are dropped, results stay in order, and the queues
    never hold more than queue_size frames each; over 10 000 frames the memory does not grow."""
    stream = rs.Stream(cfg, rs.StreamConfig(live=True, queue_size=2), renderer=Recorder(delay=0.002)).prepare()
    stream.start()
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    got, biggest = [], 0

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2 ** 20

    rss = {}
    for i in range(10_000):
        stream.put(frame, meta=i)
        biggest = max(biggest, *(q.qsize() for q in stream._queues))
        got += stream.ready()
        if i == 1000:
            rss["start"] = rss_mb()
    stream.close()
    while (r := stream.get(timeout=10)) is not None:
        got.append(r)
    rss["end"] = rss_mb()
    assert biggest <= 2
    indices = [r.index for r in got]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert stream.dropped > 0 and len(got) + stream.dropped == 10_000
    assert all(r.meta == r.index for r in got)
    assert rss["end"] - rss["start"] < 20, rss


def test_file_stream_drops_nothing_and_runs_stages_in_their_own_threads(cfg):
    rec = Recorder(delay=0.001)
    stream = rs.Stream(cfg, rs.StreamConfig(queue_size=1, temporal=False), renderer=rec).prepare()
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(200)]
    out = list(stream.run(frames))
    assert [r.index for r in out] == list(range(200)) and stream.dropped == 0
    assert all(int(r.image[0, 0, 0]) == 255 - i for i, r in enumerate(out))
    assert "stream-render" in rec.threads


def test_a_failing_stage_raises_its_own_error_to_the_consumer(cfg):
    stream = rs.Stream(cfg, rs.StreamConfig(temporal=False), renderer=Recorder(fail_at=5)).prepare()
    frames = [np.zeros((8, 8, 3), np.uint8)] * 50
    with pytest.raises(ValueError, match="cannot be drawn"):
        for _ in stream.run(frames):
            pass
    assert not stream.running


def test_update_changes_character_and_factors_from_the_next_frame(cfg, talking):
    stream = rs.Stream(cfg, rs.StreamConfig(character="classic", temporal=False)).prepare()
    a = stream.process(talking[0]).image
    stream.update(character="noir")
    b = stream.process(talking[0]).image
    stream.update(texture=1.0, line=0.0)
    c = stream.process(talking[0]).image
    assert np.abs(a.astype(int) - b).mean() > 3  # noir's student
    assert np.abs(b.astype(int) - c).mean() > 0.5  # its factors moved
    assert stream.renderer.factors["texture"] == 1.0
    with pytest.raises(ValueError, match="unknown factors"):
        stream.update(sharpness=1.0)
    with pytest.raises(ValueError):
        stream.update(character="nobody")
    assert stream.character == "noir"


def test_contour_lines_are_drawn_unless_turned_off(cfg, talking):
    """The student path draws the teacher's contour lines (realtime.student.contour_ink) by default;
    StreamConfig(contours=False), which `python -m realtime.video --no-contours` sets, draws the strokes only."""
    from realtime.video import build_stream, parse_args

    on = rs.Stream(cfg, rs.StreamConfig(character="classic", temporal=False)).prepare().process(talking[0]).image
    off = rs.Stream(cfg, rs.StreamConfig(character="classic", temporal=False, contours=False)).prepare()
    plain = off.process(talking[0]).image
    lines = np.abs(on.astype(int) - plain).max(axis=2) > 30
    assert 0.005 < lines.mean() < 0.2, lines.mean()
    assert (on[lines].astype(int).sum(axis=1) < plain[lines].astype(int).sum(axis=1)).mean() > 0.9  # dark lines
    args = parse_args(["in.mp4", "out.mp4", "--character", "classic", "--no-contours"])
    assert build_stream(cfg, args).config.contours is False


# ----------------------------------------------------------------------------------------------- temporal
def test_temporal_blending_halves_the_flicker_of_the_student_on_a_real_clip(cfg, talking):
    """The issue's target: at least 50 % lower warping error between consecutive outputs, on the talking-head
    clip through the shipped student, and the blended frames stay close to the per-frame ones."""
    stream = rs.Stream(cfg, rs.StreamConfig(character="classic", temporal=False)).prepare()
    raw = [r.image for r in stream.run(talking)]
    blend = TemporalBlender()
    smooth = [blend(f, o) for f, o in zip(talking, raw)]
    before, after = flickers(talking, raw, smooth)
    assert before.coverage > 0.8
    assert after.error <= 0.5 * before.error, (before, after)
    psnr = [10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b) ** 2)) for a, b in zip(raw[1:], smooth[1:])]
    # 33-35 dB with the face strokes only; the contour lines, which move by a pixel from frame to frame, are where
    # the blend departs most from each frame (32-33 dB)
    assert min(psnr) > 31, psnr


def test_no_ghost_where_the_flow_cannot_follow():
    """A block that jumps further than the flow can follow: where it was, the blended frame shows the new frame,
    not a trail of the old block."""
    rng = np.random.default_rng(1)
    bg = (rng.random((120, 160, 3)) * 60 + 100).astype(np.uint8)
    import cv2

    bg = cv2.GaussianBlur(bg, (0, 0), 2)
    f0, f1 = bg.copy(), bg.copy()
    f0[40:80, 10:50] = 250
    f1[40:80, 100:140] = 250
    styl = lambda f: (255 - f)  # noqa: E731 - any per-frame "style"
    blend = TemporalBlender(strength=0.9)
    blend(f0, styl(f0))
    out = blend(f1, styl(f1))
    old_place = np.abs(out[40:80, 10:50].astype(int) - styl(f1)[40:80, 10:50]).max()
    new_place = np.abs(out[40:80, 100:140].astype(int) - styl(f1)[40:80, 100:140]).max()
    assert old_place < 20 and new_place < 20, (old_place, new_place)
    # The static background between them agrees with the previous frame: blended, and so almost unchanged.
    assert np.abs(out[:, 60:90].astype(int) - styl(f1)[:, 60:90]).mean() < 1


@pytest.mark.parametrize("low, full", [((270, 480), (1080, 1920)), ((180, 320), (720, 1280)), ((121, 215), (484, 858))])
def test_the_flows_full_size_map_is_the_resized_flow_plus_each_pixels_place(low, full):
    """The blender adds each pixel's own place to the flow before the resize (one full-size pass less): the same map
    to float rounding, the frame's border rows and columns (where the resize clamps) included."""
    import cv2

    from realtime.temporal import _grid, _upsampled_maps

    rng = np.random.default_rng(0)
    flow = ((rng.random(low + (2,)) - 0.5) * 8).astype(np.float32)
    s = low[1] / full[1]
    exact = cv2.resize(flow * np.float32(1.0 / s), full[::-1], interpolation=cv2.INTER_LINEAR) + _grid(*full)
    maps = _upsampled_maps(flow, s, full[::-1])
    assert np.abs(maps - exact).max() < 1e-3


def test_a_cut_starts_again_from_the_new_frame(load_media):
    a = load_media("portrait_light_skin_asian_01.jpg")[:256, :256]
    b = np.ascontiguousarray(a[::-1, ::-1])
    blend = TemporalBlender()
    blend(a, a)
    np.testing.assert_array_equal(blend(b, 255 - b), 255 - b)


STAGE = "stage_performer_lowlight_360p.mp4"  # a wide shot, a cut after frame 19, a dark close-up


def test_a_real_cut_starts_again_though_the_flow_still_looks_confident(video_clip):
    """The stage clip's cut joins two dark shots: the flow's photometric check still passes on about half of the
    frame, which the confidence test alone let through (the first frame of the new shot showed the old one
    blended in). The colour-content test catches it; no other pair of the clip is taken for a cut."""
    frames = decode(video_clip(STAGE), 24)
    blend = TemporalBlender()
    styl = [np.ascontiguousarray(f[:, ::-1]) for f in frames]  # any per-frame "style"
    outs = [blend(f, s) for f, s in zip(frames, styl)]
    assert blend.cuts == 1
    np.testing.assert_array_equal(outs[20], styl[20])
    assert not np.array_equal(outs[19], styl[19])  # ordinary frames are blended


def test_the_flicker_metric_leaves_out_pairs_across_a_cut(video_clip, talking):
    """A cut is a change no flow explains, in the input as in any output: it is not flicker. Two shots joined
    score as the pairs of each shot alone (one pair across the cut left out and counted)."""
    import cv2

    other = [cv2.resize(f, talking[0].shape[1::-1]) for f in decode(video_clip(STAGE), 6)]
    joined = talking[:6] + other
    whole = flicker(joined, joined)
    assert whole.cuts == 1 and whole.pairs == 10
    a, b = flicker(talking[:6], talking[:6]), flicker(other, other)
    assert whole.error == pytest.approx((a.error * a.pairs * a.coverage + b.error * b.pairs * b.coverage)
                                        / (a.pairs * a.coverage + b.pairs * b.coverage), rel=0.02)


def test_the_flicker_metric_follows_a_fast_face_in_a_dark_shot(video_clip):
    """The metric scores a pixel where its flow is forward-backward consistent; a flow that underestimates a motion
    both ways passes that check and then charges the misalignment to the outputs as flicker. Farneback's flow did
    that on the stage clip's dark close-up (the face moving fast): the input's own warping error over the first
    eight pairs after the cut was 3.5 grey levels. DeepFlow follows the face: the input explains itself there."""
    frames = decode(video_clip(STAGE), 29)[20:]  # the close-up after the cut
    own = flicker(frames, frames)
    assert own.cuts == 0 and own.coverage > 0.8, own
    assert own.error < 2.0, own  # 1.2 with DeepFlow


def test_temporal_blending_halves_the_flicker_of_a_dark_close_up_moving_fast(cfg, video_clip):
    """The hard clip: the stage clip's dark close-up of a head moving fast (32 frames after the cut), through the
    shipped student. The blender's flow must follow the face down to half of its 480 px frame (DIS medium): the
    ultrafast preset stops at a quarter, where the face is a few blurred pixels. On the network's own output the
    ultrafast preset took 45 % of the flicker away here, the medium one 58 %. The realtime step flattens that
    output now (realtime.guided.flatten), which is itself steadier (warping error 1.57 -> 1.06; after blending
    0.66 -> 0.57), so less is left to take: ultrafast 39 %, fast 40 %, medium 46 % (2-core EPYC, avx512_vnni)."""
    frames = decode(video_clip(STAGE), 52)[20:]
    stream = rs.Stream(cfg, rs.StreamConfig(character="classic", temporal=False)).prepare()
    raw = [r.image for r in stream.run(frames)]
    blend = TemporalBlender()
    smooth = [blend(f, o) for f, o in zip(frames, raw)]
    before, after = flickers(frames, raw, smooth)
    assert before.cuts == 0 and before.coverage > 0.85, before
    assert after.error <= 0.575 * before.error, (before, after)


def test_moving_edges_stay_confident_where_the_flow_is_off_by_a_fraction_of_a_pixel(video_clip):
    """On the crowd clip (moving camera) the blender's fast flow is off by a fraction of a pixel on many edges, and
    a strong edge then changes by tens of grey levels: the grey-level check alone failed on about half of them,
    so the blending left the edges, where the lines sit, to flicker. Read as a misalignment in pixels there
    (edge_tolerance), most pass; flat ground is judged as before."""
    import cv2

    from realtime.temporal import _gradient, _grey

    frames = decode(video_clip(PEDESTRIANS), 11, side=640)
    grey, _ = _grey(frames[10], 480)
    edges = cv2.GaussianBlur(_gradient(grey), (0, 0), 1.0) > 20
    conf = {}
    for k in (0.0, 0.5):
        blend = TemporalBlender(edge_tolerance=k)
        blend(frames[9], frames[9])
        blend(frames[10], frames[10])
        conf[k] = float(blend.confidence[edges].mean())
    assert conf[0.0] < 0.65 and conf[0.5] > 0.75, conf  # measured 0.55 and 0.84


def test_max_side_stylises_smaller_and_answers_in_the_input_size(cfg, talking):
    from studio.perception.faces import get_face_backend

    frame = talking[0]
    stream = rs.Stream(cfg, rs.StreamConfig(character="classic", max_side=320, temporal=False)).prepare()
    res = stream.process(frame)
    assert res.image.shape == frame.shape
    (face,) = get_face_backend("mediapipe", cfg.perception).detect(frame)
    (track,) = res.tracks
    assert abs(track.box.center[0] - face.box.center[0]) < 0.1 * face.box.width
    assert abs(track.box.width - face.box.width) < 0.2 * face.box.width
    full = rs.Stream(cfg, rs.StreamConfig(character="classic", temporal=False)).prepare().process(frame).image
    # The same style, only softer: at 320 px the face is too small for its thin lines (glasses) to be inked, so the
    # two differ by those lines too (a photo against its stylisation differs by about 20).
    assert np.abs(full.astype(int) - res.image).mean() < 9


def test_the_facade_is_realtime_stream_and_is_called_per_frame(cfg, talking):
    import realtime

    assert realtime.Stream is rs.Stream and realtime.StreamConfig is rs.StreamConfig
    stream = realtime.Stream(cfg, realtime.StreamConfig(temporal=False), renderer=Recorder()).prepare()
    np.testing.assert_array_equal(stream(talking[0]).image, 255 - talking[0])


def test_the_teacher_path_carries_a_clips_light(cfg, video_clip):
    """The teacher on a video (`StreamConfig(teacher=...)`, realtime.renderers.TeacherFrames) carries the light from
    frame to frame (SteadyClip): the pedestrians clip's faces come and go, and each frame's own light decision
    switched the whole frame's exposure and cast. Its first frame is the photo path's; later frames differ where the
    light is carried, the teacher's flicker falls (6.45 -> 5.40 over 48 frames at 360 px; docs/PERFORMANCE.md), and
    `reset()` (a new clip) starts again: the same frames."""
    frames = decode(video_clip(PEDESTRIANS), 8, side=240)
    s = rs.Stream(cfg, rs.StreamConfig(character="classic", teacher="classic", temporal=False)).prepare()
    carried = [s.process(f).image for f in frames]
    s.reset()
    again = [s.process(f).image for f in frames]
    own = [s.renderer.stylizer(f, s.renderer._params("classic")).image for f in frames]
    assert all(np.array_equal(a, b) for a, b in zip(carried, again))
    assert np.array_equal(carried[0], own[0])
    assert sum(not np.array_equal(a, b) for a, b in zip(carried, own)) >= 2
    _, per_frame, steady = flickers(frames, frames, own, carried)
    assert steady.error < per_frame.error, (steady.error, per_frame.error)
