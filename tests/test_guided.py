"""realtime.guided: the student at a fixed working size, flattened there, brought back to the frame's size (resized,
or by a guided filter with the frame as the guide)."""
import cv2
import numpy as np
import pytest

from realtime.guided import WORK_SIDE, flatten, guided_upsample, to_work_size, work_size


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2) / 255.0 ** 2))


@pytest.fixture(scope="module")
def frame(load_media):
    """A real 1080p-sized frame: hair, skin, eyes and a background (the photo within its yellow frame, which the step
    would keep aside: studio.perception.find_frame)."""
    img = load_media("portrait_bangs_red_hair_01.jpg")[4:-4, 4:-4]
    h, w = img.shape[:2]
    return np.ascontiguousarray(cv2.resize(img, (round(w * 1080 / h), 1080), interpolation=cv2.INTER_AREA))


def test_work_size_keeps_small_frames_and_the_aspect_of_large_ones(frame):
    assert work_size((384, 512, 3)) == (512, 384) and work_size((480, 640, 3)) == (512, 384)
    small = np.zeros((300, 400, 3), np.uint8)
    assert to_work_size(small) is small  # nothing to do: the very frame
    w, h = work_size(frame.shape)
    assert max(w, h) == WORK_SIDE and abs(w / h - frame.shape[1] / frame.shape[0]) < 0.01
    assert to_work_size(frame).shape == (h, w, 3)
    assert work_size((1080, 1920, 3), 384) == (384, 216)


def test_the_edges_come_from_the_frame(frame):
    """A network that returned its input at the working size: brought back up by the guided filter it is close to
    the full-size frame (the edges and texture are the frame's own pixels), far closer than resized back up."""
    small = to_work_size(frame)
    out_small = small.astype(np.float32) / 255.0
    guided = guided_upsample(frame, small, out_small)
    resized = cv2.resize(small, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert guided.shape == frame.shape and guided.dtype == np.uint8
    # measured 37.3 dB against 29.6 dB for the resize
    assert psnr(guided, frame) > psnr(resized, frame) + 4.0


def test_flat_regions_stay_flat(frame):
    """Where the network paints a flat region, the frame's texture does not come back through the guide: a uniform
    output stays uniform (a = 0 where the output does not follow the guide)."""
    small = to_work_size(frame)
    flat = np.full(small.shape, 0.4, np.float32)
    out = guided_upsample(frame, small, flat)
    assert int(out.max()) - int(out.min()) <= 1


def test_the_step_runs_the_network_at_the_working_size(frame):
    """stylize_frame brings a large frame down to WORK_SIDE for the engine and back to its own size; a frame within
    the working size goes through unchanged (bit for bit what it gave before the working size existed)."""
    from realtime.student import stylize_frame, to_rgb8

    seen = []

    def engine(x, factors):  # returns its input: the step's own resizing is what is tested
        seen.append(x.shape)
        return x

    factors = np.full((1, 3), 0.5, np.float32)
    out = stylize_frame(engine, frame, [], None, 0.0, factors, flat=False)  # the resizing alone, not flattened
    assert out.shape == frame.shape and seen[-1][2:] == to_work_size(frame).shape[:2]
    # resized back by default; with the guided filter the frame's own detail comes back
    guided = stylize_frame(engine, frame, [], None, 0.0, factors, upsample="guided", flat=False)
    assert psnr(guided, frame) > psnr(out, frame) + 4.0
    with pytest.raises(ValueError, match="upsample"):
        stylize_frame(engine, frame, [], None, 0.0, factors, upsample="cubic")
    small = np.ascontiguousarray(frame[:384, :512])
    same = stylize_frame(engine, small, [], None, 0.0, factors, flat=False)
    assert seen[-1][2:] == small.shape[:2]
    itself = to_rgb8((small.astype(np.float32) / 255.0).transpose(2, 0, 1))
    np.testing.assert_array_equal(same, itself)
    # flattened by default, at the factors' texture (0.5)
    np.testing.assert_array_equal(stylize_frame(engine, small, [], None, 0.0, factors), flatten(itself, small, 0.5))
    assert stylize_frame(engine, frame, [], None, 0.0, factors, work_side=None).shape == frame.shape
    assert seen[-1][2:] == frame.shape[:2]


def laplacian_energy(img: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)).mean())


def test_flatten_removes_faint_texture_and_keeps_edges(frame):
    """A student output with the faint speckle a small network leaves (2-3 grey levels) over a region split by a
    strong edge: flattened, the speckle is gone, the edge is as sharp as before, and nothing moves at texture 0."""
    small = to_work_size(frame)
    h, w = small.shape[:2]
    out = np.full(small.shape, 90, np.uint8)
    out[:, w // 2:] = 200  # a cel boundary, 110 grey levels
    rng = np.random.default_rng(0)
    speckled = np.clip(out.astype(np.int16) + rng.integers(-3, 4, out.shape), 0, 255).astype(np.uint8)
    assert flatten(speckled, small, 0.0) is speckled
    flat = flatten(speckled, small, 0.6)
    assert laplacian_energy(flat) < 0.4 * laplacian_energy(speckled)
    step = flat[:, w // 2].astype(int) - flat[:, w // 2 - 1].astype(int)  # the edge's jump between two columns
    assert np.median(step) > 90  # of 110 (the deblocking fit's ridge takes a few levels: 96 measured)
    assert np.abs(flat[:, : w // 2 - 8].astype(int) - 90).max() <= 3  # each side keeps its colour
    # the same pixels whatever OpenCV's threads (the stream's pipelined and sequential frames must agree)
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = flatten(speckled, small, 0.6)
    finally:
        cv2.setNumThreads(threads)
    np.testing.assert_array_equal(one, flat)


def test_flatten_leaves_no_staircase_where_the_photo_is_smooth(load_media):
    """The smoother solves rows and columns one at a time; where its guide changes slowly its regions ended in
    axis-aligned steps (a staircase of blocks over bokeh and skies). A softened photo (as the network gives one) over
    the medium-skin portrait's bokeh: flattened, its largest steps between neighbours stay near the input's (the
    99.9th percentile of 10 grey levels was 16 before the deblocking, 12 with it) and it is flatter than the input."""
    small = to_work_size(load_media("portrait_medium_skin_01.jpg"))
    soft = cv2.GaussianBlur(small, (0, 0), 2.0)
    flat = flatten(soft, small, 0.6)
    box = (slice(0, 120), slice(0, 180))  # trees and sky out of focus above her shoulder

    def steps(y):
        g = cv2.cvtColor(y, cv2.COLOR_RGB2GRAY).astype(np.float32)[box]
        return np.percentile(np.concatenate([np.abs(np.diff(g, axis=1)).ravel(), np.abs(np.diff(g, axis=0)).ravel()]),
                             99.9)

    def flat_share(y):
        return float((np.abs(cv2.Laplacian(cv2.cvtColor(y, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))[box]
                      < 2).mean())

    assert steps(flat) <= 1.4 * steps(soft)
    assert flat_share(flat) > flat_share(soft) + 0.05
