"""The shipped students (students/<character>/): they load, run through every installed engine, stylise a
held-out real photo closer to their teacher than the photo itself is, and their factor inputs move the output
the way the teacher's factors do."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_cartoonizer import detail_energy  # noqa: E402

from realtime.engines import ENGINES, EngineUnavailable, load_engine  # noqa: E402
from studio import StylizeParams, Stylizer, load_config  # noqa: E402
from studio.characters import list_characters  # noqa: E402
from studio.models import STUDENT_FACTORS  # noqa: E402
from studio.models.student_unet import StudentUNet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = [c.name for c in list_characters(load_config()) if (REPO / "configs" / "characters" / f"{c.name}.yaml").is_file()]
# Not in the training set (training/photo_set.py leaves the non-commercial photos out), so truly held out.
HELD_OUT = "portrait_light_skin_asian_01.jpg"
SECOND_HELD_OUT = "portrait_medium_skin_01.jpg"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2) / 255.0 ** 2))


def held_out(load_media, name: str) -> np.ndarray:
    """A held-out photo at 384 px on its long side, both sides a multiple of 16."""
    img = load_media(name)
    h, w = img.shape[:2]
    f = 384 / max(h, w)
    return cv2.resize(img, (round(w * f) // 16 * 16, round(h * f) // 16 * 16), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo(load_media):
    return held_out(load_media, HELD_OUT)


def run_student(engine, img: np.ndarray, **factors) -> np.ndarray:
    f = np.array([[factors.get(k, 0.5) for k in STUDENT_FACTORS]], np.float32)
    y = engine((img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy(), f)[0].transpose(1, 2, 0)
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)


def test_every_built_in_character_ships_a_student():
    assert BUILT_IN, "no built-in characters found"
    for name in BUILT_IN:
        folder = REPO / "students" / name
        model = StudentUNet.from_pretrained(folder)
        assert model.config.factors == len(STUDENT_FACTORS)
        report = json.loads((folder / "report.json").read_text())
        assert report["psnr"] > report["identity_psnr"], name  # it learned more than "return the photo"
        assert (folder / "distill_config.json").is_file() and (folder / "pairs_config.json").is_file()
        assert (folder / "model.safetensors").stat().st_size < 8 << 20  # small enough to ship


@pytest.mark.parametrize("character", BUILT_IN)
def test_student_is_closer_to_its_teacher_than_the_photo(photo, character):
    engine = load_engine("onnxruntime", REPO / "students" / character, device="cpu")
    factors = dict(line=0.5, texture=0.6, color=0.6)
    teacher = Stylizer(load_config())(photo, StylizeParams(character=character, warp=0.0, **factors)).image
    student = run_student(engine, photo, **factors)
    assert student.shape == photo.shape
    assert psnr(student, teacher) > psnr(photo, teacher) + 1.0, character


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_shipped_student_runs_on_every_installed_engine(photo, name):
    try:
        engine = load_engine(name, REPO / "students" / "classic", device="cpu")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    ref = load_engine("onnxruntime", REPO / "students" / "classic", device="cpu")
    a, b = run_student(engine, photo), run_student(ref, photo)
    if engine.precision == "int8":  # quantised: close to the float network, not equal (48-50 dB measured)
        assert psnr(a, b) > 40, psnr(a, b)
    else:
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("character", BUILT_IN)
def test_every_built_in_student_ships_its_int8_model_for_the_current_weights(photo, character):
    """The fast CPU engine works on a fresh clone: student.int8.onnx made from these weights, checked on photos
    held out of its calibration (int8.json), and as close to its teacher on the held-out portrait as the float
    student (within 0.1 dB)."""
    from realtime.export import current_int8

    folder = REPO / "students" / character
    assert current_int8(folder) is not None
    report = json.loads((folder / "int8.json").read_text())
    assert report["parity_psnr_min"] > 40 and not set(report["calibration_photos"]) & set(report["parity_photos"])
    assert HELD_OUT not in report["calibration_photos"]
    factors = dict(line=0.5, texture=0.6, color=0.6)
    teacher = Stylizer(load_config())(photo, StylizeParams(character=character, warp=0.0, **factors)).image
    fast, full = (run_student(load_engine(name, folder, device="cpu"), photo, **factors)
                  for name in ("onnxruntime-int8", "onnxruntime"))
    assert psnr(fast, teacher) > psnr(full, teacher) - 0.1, character


@pytest.mark.parametrize("character", BUILT_IN)
def test_texture_factor_smooths_like_the_teacher(photo, character):
    """Texture up: less fine detail, measured as in tests/test_cartoonizer.py on the student's output of a held-out
    photo."""
    engine = load_engine("onnxruntime", REPO / "students" / character, device="cpu")
    flat, detailed = (run_student(engine, photo, texture=v).astype(np.float32) / 255.0 for v in (1.0, 0.0))
    assert detail_energy(flat) < 0.95 * detail_energy(detailed)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float32).ravel(), b.astype(np.float32).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def jittered(img: np.ndarray, n: int = 4, seed: int = 0) -> list:
    """n copies of a uint8 image with at most one grey level of noise per channel (a fixed seed)."""
    rng = np.random.default_rng(seed)
    return [np.clip(img.astype(np.int16) + rng.integers(-1, 2, img.shape), 0, 255).astype(np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def second_photo(load_media):
    """Another held-out portrait (also left out of training as non-commercial)."""
    return held_out(load_media, SECOND_HELD_OUT)


@pytest.mark.parametrize("character", BUILT_IN)
def test_each_factor_moves_the_realtime_output_the_way_it_moves_the_teachers(photo, second_photo, character):
    """Each factor from 0.1 to 0.9, the others at 0.5, on held-out photos: the change it makes to the realtime
    output, pixel by pixel, points the way of the change it makes to the teacher's (cosine of the two difference
    images; 0 would be unrelated). Color and texture are the student's own inputs; the line factor works through
    the ink the realtime step draws (the student's own line input is weak: pastel's is about 0 on the held-out
    photos).

    The teacher's palette is a k-means fit that flips under invisible input changes (issue 14): on this photo
    alone noir's color cosine was 0.35 on an AVX-512 EPYC and 0.22 on an AVX2 one, and 0.22-0.31 here under
    one grey level of noise. So the teacher's response is measured as its mean over four copies with one grey
    level of noise, and color and texture are averaged over two held-out portraits. Measured that way on an AVX2
    EPYC (three noise seeds): color 0.56-0.57 / 0.78-0.81 / 0.35-0.37, texture 0.30 / 0.51 / 0.49 (classic /
    pastel / noir); line, on the first photo: 0.82 / 0.75 / 0.87."""
    from realtime.student import StudentStylizer
    from studio.perception.faces import get_face_backend

    cfg = load_config()
    teacher = Stylizer(cfg)
    engine = load_engine("onnxruntime", REPO / "students" / character, device="cpu")
    faces = get_face_backend("mediapipe", cfg.perception).detect(photo)
    base = dict(line=0.5, texture=0.5, color=0.5)

    def mean_teacher(img, **f):
        runs = [teacher(p, StylizeParams(character=character, warp=0.0, **f)).image for p in jittered(img)]
        return np.mean([r.astype(np.float32) for r in runs], axis=0)

    # The students retrained on the painted-face teacher (2026-12-03): classic's color response fell to 0.01-0.04 in
    # 4000 steps (the teacher's color factor now also sets the faces' bands and skin chroma); trained to 10000 steps
    # it is 0.12 and its texture response 0.14 (0.19 at 4000; pastel 0.41, noir 0.34). Both must still point the
    # teacher's way; the edge-aware student of issue 14 is to bring them up.
    color_least, texture_least = (0.0, 0.08) if character == "classic" else (0.25, 0.15)
    for factor, least in (("color", color_least), ("texture", texture_least), ("line", 0.5)):
        lo, hi = {**base, factor: 0.1}, {**base, factor: 0.9}
        if factor == "line":  # the whole realtime step, warp included (the teacher warps alike)
            t = [teacher(photo, StylizeParams(character=character, **f)).image.astype(np.float32) for f in (lo, hi)]
            s = [StudentStylizer(cfg, character, **f)(photo, faces).astype(np.float32) for f in (lo, hi)]
            c = cosine(t[1] - t[0], s[1] - s[0])
        else:
            cs = []
            for img in (photo, second_photo):
                t = [mean_teacher(img, **f) for f in (lo, hi)]
                s = [run_student(engine, img, **f).astype(np.float32) for f in (lo, hi)]
                cs.append(cosine(t[1] - t[0], s[1] - s[0]))
            c = float(np.mean(cs))
        assert c > least, (factor, c)


@pytest.mark.parametrize("character", BUILT_IN)
def test_face_strokes_bring_the_realtime_path_closer_to_the_teacher(photo, character):
    """The realtime step draws the teacher's own face strokes from the (warped) landmarks over the student: over
    the face it is closer to the teacher than the student alone, the strokes are only on the face, and at line 0
    there are none."""
    from realtime.student import StudentStylizer, stylize_frame
    from studio.perception.faces import get_face_backend

    cfg = load_config()
    factors = dict(line=0.6, texture=0.6, color=0.6, warp=0.5)
    teacher = Stylizer(cfg)(photo, StylizeParams(character=character, **factors)).image
    faces = get_face_backend("mediapipe", cfg.perception).detect(photo)
    assert faces
    realtime = StudentStylizer(cfg, character, contours=False, **factors)  # the contours: the next test
    inked = realtime(photo, faces)
    alone = stylize_frame(realtime.engine, photo, faces, realtime.character.geometry, 0.5, realtime._factors,
                          detail=True)
    x0, y0, x1, y1 = faces[0].box.as_int()
    face = (slice(max(0, y0), y1), slice(max(0, x0), x1))
    assert psnr(inked[face], teacher[face]) > psnr(alone[face], teacher[face]) + 0.1, character
    changed = np.abs(inked.astype(int) - alone).max(axis=2) > 30
    # strokes on the face (pastel's, light brown at weight 0.6, with the lighter brow and nose ink: 0.8 %) ...
    assert changed[face].mean() > 0.005
    outside = np.ones(changed.shape, bool)
    outside[face] = False
    assert changed[outside].mean() < 0.002  # ... and nowhere else
    no_line = StudentStylizer(cfg, character, contours=False, **{**factors, "line": 0.0})
    np.testing.assert_array_equal(no_line(photo, faces), stylize_frame(
        no_line.engine, photo, faces, no_line.character.geometry, 0.5, no_line._factors, detail=True,
        skin=no_line.character))


def test_the_realtime_step_keeps_a_photos_frame_as_the_teacher_does(photo):
    """The realtime step keeps a photo's own frame flat round it, as the studio does (studio.pipeline): the photo
    within it is stepped as it is alone (its faces moved into it), the frame one flat colour."""
    from realtime.student import StudentStylizer
    from studio.perception.faces import get_face_backend

    cfg = load_config()
    step = StudentStylizer(cfg, "classic", line=0.6, texture=0.6, color=0.6)
    framed = cv2.copyMakeBorder(photo, 3, 4, 5, 2, cv2.BORDER_CONSTANT, value=(240, 235, 60))
    faces = get_face_backend("mediapipe", cfg.perception).detect(framed)
    assert faces
    out = step(framed, faces)
    h, w = photo.shape[:2]
    np.testing.assert_array_equal(out[3:3 + h, 5:5 + w], step(photo, [f.moved(-5, -3) for f in faces]))
    border = np.ones(out.shape[:2], bool)
    border[3:3 + h, 5:5 + w] = False
    assert (out[border] == (240, 235, 60)).all()


def test_face_strokes_join_the_contours_by_their_max():
    """realtime.student.ink_layers: the face strokes (a box's alpha) join the whole frame's contours and outline by
    their max and are inked in one pass, as the teacher inks its person layer (np.maximum, then ink_over once); two
    passes inked a stroke over a line darker than either. Without a whole frame's layer each box is inked in its
    own, the rest of the frame untouched."""
    from realtime.student import ink_layers
    from studio.stylize.cartoonizer import ink_over

    rng = np.random.default_rng(0)
    y = rng.integers(90, 250, (60, 80, 3), np.uint8)
    whole = np.zeros((60, 80), np.float32)
    whole[:, 30:34] = 0.6  # a contour
    box = (slice(10, 40), slice(20, 50))
    stroke = np.zeros((30, 30), np.float32)
    stroke[10:14, :] = 0.5  # a stroke across it
    color = np.array([30, 20, 10], np.uint8)
    out = ink_layers(y.copy(), [(None, whole.copy()), (box, stroke)], color)
    joined = whole.copy()
    joined[box] = np.maximum(joined[box], stroke)
    np.testing.assert_array_equal(out, ink_over(y.copy(), joined, color))
    twice = ink_over(y.copy(), whole, color)
    twice[box] = ink_over(twice[box], stroke, color)
    assert (out.astype(int).sum(-1) > twice.astype(int).sum(-1))[20:24, 30:34].all()  # where they cross: lighter
    alone = ink_layers(y.copy(), [(box, stroke)], color)
    outside = np.ones((60, 80), bool)
    outside[box] = False
    assert np.array_equal(alone[outside], y[outside]) and not np.array_equal(alone[box], y[box])


@pytest.mark.parametrize("character", BUILT_IN)
def test_contour_lines_bring_the_realtime_path_closer_to_the_teacher(load_media, character):
    """The realtime step draws the teacher's contour lines (its own line function, background settings) over the
    student: on a held-out photo the whole image is closer to the teacher, the lines are dark strokes in the
    character's line colour, they are off with contours=False and follow the line factor."""
    from realtime.student import StudentStylizer, stylize_frame
    from studio.color import hex_to_rgb
    from studio.perception.faces import get_face_backend

    img = load_media("portrait_dark_skin_01.jpg")  # held out (non-commercial: not in the training set)
    h, w = img.shape[:2]
    f = 384 / max(h, w)
    img = cv2.resize(img, (round(w * f) // 16 * 16, round(h * f) // 16 * 16), interpolation=cv2.INTER_AREA)
    cfg = load_config()
    factors = dict(line=0.6, texture=0.6, color=0.6)
    teacher = Stylizer(cfg)(img, StylizeParams(character=character, **factors)).image
    faces = get_face_backend("mediapipe", cfg.perception).detect(img)
    realtime = StudentStylizer(cfg, character, **factors)
    assert realtime.contours
    lined, plain = realtime(img, faces), StudentStylizer(cfg, character, contours=False, **factors)(img, faces)
    assert psnr(lined, teacher) > psnr(plain, teacher) + 0.3, character
    changed = np.abs(lined.astype(int) - plain).max(axis=2) > 30
    assert 0.01 < changed.mean() < 0.2  # lines, not a wash over the picture
    ink = hex_to_rgb(realtime.character.line_color)[0] * 255
    assert np.abs(lined[changed].astype(float).mean(axis=0) - ink).max() < 60  # drawn in the line colour
    np.testing.assert_array_equal(plain, stylize_frame(realtime.engine, img, faces, realtime.character.geometry,
                                                       realtime.factors["warp"], realtime._factors,
                                                       (0.6, realtime.character.line_weight, realtime._line_rgb),
                                                       detail=True, skin=realtime.character))
    thin = StudentStylizer(cfg, character, **{**factors, "line": 0.4})(img, faces)
    assert (np.abs(thin.astype(int) - plain).max(axis=2) > 30).mean() < changed.mean()  # fewer, thinner lines


@pytest.fixture(scope="module")
def group(load_media):
    """A 7-person group at 512 px: the faces at the back are 25-45 px wide, a few of the student's blocks."""
    img = load_media("group_7faces_elderly_indoor_01.jpg")
    h, w = img.shape[:2]
    f = 512 / max(h, w)
    return np.ascontiguousarray(cv2.resize(img, (round(w * f) // 16 * 16, round(h * f) // 16 * 16),
                                           interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("character", BUILT_IN)
def test_faces_in_a_group_keep_their_detail(group, character):
    """The realtime step takes each face oval's detail finer than the student places from the photo, painted as the
    teacher paints a face (realtime.student.face_details): over the faces of a group the step is closer to the
    teacher than without it (measured +2.4 to +4.0 dB at 512 px: eyes, glasses and smiles come back), and nothing
    away from the faces changes."""
    from realtime.student import StudentStylizer, stylize_frame
    from studio.compose import face_region
    from studio.perception.faces import get_face_backend

    cfg = load_config()
    factors = dict(line=0.6, texture=0.6, color=0.6)
    teacher = Stylizer(cfg)(group, StylizeParams(character=character, **factors)).image
    faces = get_face_backend("mediapipe", cfg.perception).detect(group)
    assert len(faces) >= 6
    step = StudentStylizer(cfg, character, "onnxruntime", **factors)
    ink = (step.factors["line"], step.character.line_weight, step._line_rgb)
    on = step(group, faces)
    off = stylize_frame(step.engine, group, faces, step.character.geometry, step.factors["warp"], step._factors, ink,
                        step.factors["background_line"], outline=True, skin=step.character)
    ovals = face_region(group.shape, faces, shrink=0.9) > 0.5
    assert psnr(on[ovals], teacher[ovals]) > psnr(off[ovals], teacher[ovals]) + 1.2, character
    near = np.zeros(group.shape[:2], bool)
    for face in faces:
        x0, y0, x1, y1 = face.box.as_int()
        pad = (x1 - x0) // 2
        near[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad] = True
    np.testing.assert_array_equal(on[~near], off[~near])


def test_face_detail_is_the_band_the_student_lacks(group):
    """add_face_details swaps only the band finer than the student's blocks: a frame that already has the photo's
    detail is left as it is (the faces here are under DETAIL_PAINT_PX, taken unpainted), so is one whose colours
    differ from the photo's, and a frame blurred as a student's blocks blur it gets the photo's faces back, only
    within the faces' boxes."""
    from realtime.student import DETAIL_PAINT_PX, _low, add_face_details, face_details
    from studio.compose import face_region
    from studio.perception.faces import get_face_backend

    faces = get_face_backend("mediapipe", load_config().perception).detect(group)
    small = [f for f in faces if f.box.width < DETAIL_PAINT_PX]
    assert len(small) >= 5
    details = face_details(group, small, 0.6, 8.0)
    assert len(details) == len(small)
    same = add_face_details(group.copy(), details, 8.0)
    assert np.abs(same.astype(int) - group).max() <= 1
    ovals = face_region(group.shape, small, shrink=0.9) > 0.5
    lighter = cv2.add(group, (30, 20, 10, 0))  # the student's colours (its coarse bands) are its own: kept
    assert np.abs(add_face_details(lighter.copy(), details, 8.0).astype(int) - lighter)[ovals].mean() < 1.0
    blurred = np.clip(_low(group.astype(np.float32), 8.0), 0, 255).astype(np.uint8)
    back = add_face_details(blurred.copy(), details, 8.0)
    assert psnr(back[ovals], group[ovals]) > psnr(blurred[ovals], group[ovals]) + 4.0
    boxes = np.zeros(group.shape[:2], bool)
    for box, *_ in details:
        boxes[box] = True
    np.testing.assert_array_equal(back[~boxes], blurred[~boxes])  # only within the faces' boxes


def _teacher_and_step(photo, character):
    """The teacher's output and the realtime step's (onnxruntime, factors 0.6) on `photo`, the step itself, and
    a function giving the raw `stylize_frame` of that step with other keyword options (flat, outline, detail)."""
    from realtime.student import StudentStylizer, stylize_frame
    from studio.perception.faces import get_face_backend

    cfg = load_config()
    factors = dict(line=0.6, texture=0.6, color=0.6)
    teacher = Stylizer(cfg)(photo, StylizeParams(character=character, **factors)).image
    faces = get_face_backend("mediapipe", cfg.perception).detect(photo)
    step = StudentStylizer(cfg, character, "onnxruntime", **factors)
    ink = (step.factors["line"], step.character.line_weight, step._line_rgb)

    def raw_step(**options):  # the faces' detail and skin on, as in the step: each test turns off what it measures
        return stylize_frame(step.engine, photo, faces, step.character.geometry, step.factors["warp"], step._factors,
                             ink, step.factors["background_line"], **{"detail": True, "skin": step.character, **options})

    return teacher, step, step(photo, faces), raw_step


@pytest.mark.parametrize("character", BUILT_IN)
def test_the_flattened_step_is_as_flat_as_the_teacher_and_closer_to_it(photo, character):
    """realtime.guided.flatten, on by default in the realtime step: on the held-out portrait the step is closer to
    the teacher than with the network's own output (measured +1.0 to +1.4 dB at 384 px), and about as flat as the
    teacher (flat share 0.67-0.69 against 0.64-0.70). The flatten's own gain in flatness is measured without the
    faces' detail, which takes the face's fine band from the photo whether flattened or not, and without the skin's
    lift and the hair's shading, which paint the hair flat whether flattened or not (0.68-0.69 against the network's
    own 0.58-0.59; 0.69-0.71 before the flatten's last guided filter took its staircase away)."""
    from studio.quality import flat_share

    teacher, step, flat, raw_step = _teacher_and_step(photo, character)
    raw = raw_step(flat=False, outline=True)
    assert psnr(flat, teacher) > psnr(raw, teacher) + 0.3, character
    assert flat_share(flat) > 0.9 * flat_share(teacher), character
    flattened, own = (raw_step(flat=on, outline=True, detail=False, skin=None) for on in (True, False))
    assert flat_share(flattened) > flat_share(own) + 0.07, character


@pytest.mark.parametrize("character", BUILT_IN)
def test_the_step_inks_the_persons_outline_as_the_teacher_does(photo, load_media, character):
    """realtime.student.outline_ink, on in the realtime step with the contours: the silhouette round the person's
    segmentation (with the person's own lines within it, `person_ink`) brings the step closer to the teacher on the
    held-out portrait (measured at 384 px: classic +1.18, pastel +0.67, noir +1.99 dB; on the second held-out
    portrait +1.65, +0.67, +2.53), and ink lies along the silhouette as the teacher's does; a landscape gets none."""
    from realtime.student import outline_ink
    from studio.perception import segment_person

    teacher, step, with_outline, raw_step = _teacher_and_step(photo, character)
    without = raw_step(outline=False)
    assert psnr(with_outline, teacher) > psnr(without, teacher) + OUTLINE_GAIN[character], character
    # Along the person's edge (2 px to each side) the step darkens about as many pixels as the teacher is darker
    # there than the step without the outline (measured 0.19-0.39 against the teacher's 0.21-0.44; none without the
    # outline).
    person = (segment_person(photo) > 0.5).astype(np.uint8)
    square = np.ones((5, 5), np.uint8)
    border = (cv2.dilate(person, square) - cv2.erode(person, square)).astype(bool)
    grey = lambda x: x.astype(np.float32).mean(2)[border]  # noqa: E731
    darker, teacher_darker = (grey(with_outline) < grey(without) - 20).mean(), (grey(teacher) < grey(without) - 20).mean()
    assert darker > 0.6 * teacher_darker and teacher_darker > 0.15, (character, darker, teacher_darker)
    lake = held_out(load_media, "bg_lake_mountains_01.jpg")
    assert outline_ink(lake, 0.6, 1.0) is None


OUTLINE_GAIN = {"classic": 0.6, "pastel": 0.3, "noir": 1.0}  # dB, about half the gain measured


@pytest.mark.parametrize("character", BUILT_IN)
def test_within_the_silhouette_the_step_draws_the_persons_shorter_lines(photo, character, monkeypatch):
    """realtime.student.person_ink: inside the person the step draws shorter contours than the background's, more
    lightly, as the teacher inks a person apart from its background. On the held-out portrait that is closer to the
    teacher than the background's contours everywhere (measured at 384 px: classic +0.37, pastel +0.22, noir +0.70
    dB)."""
    import realtime.student as rs

    teacher, step, person_lines, raw_step = _teacher_and_step(photo, character)
    monkeypatch.setattr(rs, "PERSON_MIN_LENGTH", rs.BACKGROUND_MIN_LENGTH)
    monkeypatch.setattr(rs, "PERSON_LINES", 1.0)
    background_lines = raw_step(outline=True)
    assert psnr(person_lines, teacher) > psnr(background_lines, teacher) + PERSON_LINES_GAIN[character], character


PERSON_LINES_GAIN = {"classic": 0.15, "pastel": 0.1, "noir": 0.3}  # dB, about half the gain measured


@pytest.mark.parametrize("character", BUILT_IN)
def test_the_step_paints_skin_as_light_as_the_teacher(load_media, character):
    """realtime.student.lift_skin, on in the realtime step: the students paint skin darker than their teachers (3-9
    L* at the cheeks on every held-out portrait); lifted toward the teacher's lit skin the step's cheeks are nearer
    the teacher's lightness and the whole picture closer to the teacher (measured on this portrait at 384 px, the
    face unwarped: the cheeks' gap classic 3.3 -> 2.0, pastel 4.0 -> 2.3, noir 4.3 -> 2.5 L*; +0.07, +0.14 and
    +0.07 dB; 3-6 % of the pixels change by over 1 L*)."""
    from studio.color import rgb_to_lab
    from studio.perception.skin import face_skin_samples

    photo = held_out(load_media, SECOND_HELD_OUT)
    teacher, step, lifted, raw_step = _teacher_and_step(photo, character)
    dark = raw_step(outline=True, skin=None)
    faces = [f for f in step_faces(photo) if f.has_mesh]
    assert len(faces) == 1
    cheeks = lambda x: float(np.median(face_skin_samples(x, faces[0])[:, 0]))  # noqa: E731
    gap, lifted_gap = cheeks(teacher) - cheeks(dark), cheeks(teacher) - cheeks(lifted)
    assert gap > 2.5 and -1.0 < lifted_gap < 0.8 * gap, (character, gap, lifted_gap)
    assert psnr(lifted, teacher) > psnr(dark, teacher) + 0.03, character
    changed = np.abs(rgb_to_lab(lifted)[..., 0] - rgb_to_lab(dark)[..., 0]) > 1.0
    assert 0.01 < changed.mean() < 0.3, character  # the skin, not the picture


def step_faces(photo):
    from studio.perception.faces import get_face_backend

    return get_face_backend("mediapipe", load_config().perception).detect(photo)


def test_lift_skin_moves_only_wide_faces_skin_within_the_people(load_media):
    """lift_skin on a photo darkened as a student darkens skin: the cheeks come toward the lightness the teacher
    gives that person (studio.compose.lit_skin), and nothing moves outside the people's mask it is given or when the
    face is narrower than SKIN_MIN_FACE (its cheeks would be a few of the student's blocks)."""
    from realtime.student import SKIN_MIN_FACE, lift_skin
    from studio.characters import load_character
    from studio.color import rgb_to_lab
    from studio.compose import lit_skin
    from studio.perception.skin import face_skin_samples, skin_tone

    photo = held_out(load_media, SECOND_HELD_OUT)
    face = step_faces(photo)[0]
    assert face.box.width >= SKIN_MIN_FACE
    classic = load_character("classic", load_config())
    want = float(lit_skin(classic, skin_tone(photo, face))[0])
    dark = cv2.convertScaleAbs(photo, alpha=0.85)
    L = lambda x: float(np.median(face_skin_samples(x, face)[:, 0]))  # noqa: E731
    people = np.zeros(photo.shape[:2], np.float32)
    people[:, : photo.shape[1] * 3 // 4] = 1.0  # the face is in the left three quarters
    assert face.box.x1 < photo.shape[1] * 0.7
    out = lift_skin(dark, photo, [face], classic, 0.6, people)
    assert abs(want - L(out)) < 0.5 * abs(want - L(dark)), (want, L(dark), L(out))
    np.testing.assert_array_equal(out[:, photo.shape[1] * 3 // 4 + 4:], dark[:, photo.shape[1] * 3 // 4 + 4:])
    assert (np.abs(rgb_to_lab(out)[..., 0] - rgb_to_lab(dark)[..., 0]) > 1).mean() > 0.03
    small = face.scaled(0.5, 0.5)
    assert small.box.width < SKIN_MIN_FACE
    half = cv2.resize(dark, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    assert lift_skin(half, half, [small], classic, 0.6) is half


@pytest.mark.parametrize("character", BUILT_IN)
def test_the_step_shades_hair_as_the_teacher_does(load_media, character, monkeypatch):
    """realtime.student.shade_hair, on in the realtime step: the teacher's hair shading (each head's own tone through
    the character's mapping, a shadow tone, a highlight band) painted over the student's output brings the step's
    hair nearer the teacher's lightness and the picture closer to the teacher (measured on this portrait at 384 px:
    the hair's mean |L*| gap classic 3.7 -> 2.1, pastel 2.9 -> 1.5, noir 4.0 -> 2.5; +0.45, +0.59 and +0.37 dB;
    7 % of the pixels change by over 1 L*: the hair, not the picture)."""
    import realtime.student as rs
    from studio import perception
    from studio.color import rgb_to_lab

    photo = held_out(load_media, SECOND_HELD_OUT)
    teacher, step, shaded, raw_step = _teacher_and_step(photo, character)
    monkeypatch.setattr(rs, "shade_hair", lambda y, *args: y)
    plain = step(photo, step_faces(photo))
    hair = perception.perceive(photo, load_config().perception).hair > 0.5
    assert 0.02 < hair.mean() < 0.2
    L = lambda x: rgb_to_lab(x)[..., 0]  # noqa: E731
    gap, shaded_gap = (float(np.abs(L(x) - L(teacher))[hair].mean()) for x in (plain, shaded))
    assert shaded_gap < 0.8 * gap, (character, gap, shaded_gap)
    assert psnr(shaded, teacher) > psnr(plain, teacher) + 0.18, character
    changed = np.abs(L(shaded) - L(plain)) > 1.0
    assert 0.02 < changed.mean() < 0.2, character


@pytest.mark.parametrize("character", BUILT_IN)
def test_the_step_paints_eyes_and_lips_as_the_teacher_does(photo, character, monkeypatch):
    """realtime.student.face_accents, on in the realtime step: each iris in the character's eye colour with a
    catch-light and the lips in its blush, as the teacher paints them (studio.compose.eye_accents, lip_tint). Without
    them the step showed the photo's irises (the faces' detail brings the photo's fine band back) and pale lips. On
    the held-out portrait (measured at 384 px: 0.4-0.6 % of the pixels change, their mean gap to the teacher 12-14 ->
    4-5 grey levels, the catch-light 124-128 levels brighter, +0.06 to +0.21 dB), and the rest of the frame is the
    same."""
    import realtime.student as rs

    teacher, step, painted, _ = _teacher_and_step(photo, character)
    monkeypatch.setattr(rs, "face_accents", lambda y, *args: y)
    plain = step(photo, step_faces(photo))
    changed = np.abs(painted.astype(np.int32) - plain).max(axis=-1) > 0
    assert 0.001 < changed.mean() < 0.02, character
    gap, painted_gap = (float(np.abs(x.astype(np.float32) - teacher)[changed].mean()) for x in (plain, painted))
    assert painted_gap < 0.6 * gap, (character, gap, painted_gap)
    lift = (painted.astype(np.int32).sum(-1) - plain.astype(np.int32).sum(-1))[changed].max() / 3
    assert lift > 60, character  # the catch-light
    assert psnr(painted, teacher) > psnr(plain, teacher), character


def test_shade_hair_is_the_teachers_shading_where_the_hair_is(load_media):
    """find_hair finds the hair within the people it is given (none when no one is segmented) and shade_hair paints
    only there (the output moves by at most a level of rounding elsewhere), and the coarse shading it uses
    (hair_shading's coarse=2: the light smoothed at half size, each head's levels from every other pixel) is the
    teacher's own within float rounding of the smoothing (measured 66 dB apart, where the shading itself moves the
    picture by 36 dB)."""
    from realtime.student import find_hair, shade_hair
    from studio import perception
    from studio.characters import load_character
    from studio.compose import hair_shading

    photo = held_out(load_media, SECOND_HELD_OUT)
    cfg = load_config()
    noir = load_character("noir", cfg)
    seen = perception.perceive(photo, cfg.perception)
    y = cv2.GaussianBlur(photo, (0, 0), 2.0)  # a student's output stands in: the photo without its fine detail
    assert find_hair(photo, seen.faces, lambda: None) is None
    assert shade_hair(y, photo, noir, 0.6, None) is y
    found = find_hair(photo, seen.faces, lambda: seen.person)
    out = shade_hair(y, photo, noir, 0.6, found)
    hair = found[0]
    away = cv2.erode((hair < 0.01).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert np.abs(out.astype(int) - y)[away].max() <= 1
    assert (np.abs(out.astype(int) - y).max(-1) > 3)[hair > 0.5].mean() > 0.5
    f = lambda x: x.astype(np.float32) / 255.0  # noqa: E731
    exact, strands = hair_shading(f(photo), f(y), seen.hair, noir, 0.9)
    coarse, none = hair_shading(f(photo), f(y), seen.hair, noir, 0.9, coarse=2, strands=False)
    assert strands.max() > 0.1 and not none.any()
    assert psnr(coarse * 255, exact * 255) > 55.0
    assert psnr(exact * 255, f(y) * 255) < 40.0


@pytest.mark.parametrize("name", ["portrait_bangs_red_hair_01.jpg", SECOND_HELD_OUT])
def test_the_contours_keep_hair_quiet_as_the_teacher_does(load_media, name):
    """The step's contours keep the hair it finds quiet at HAIR_QUIET, as the teacher keeps its hair (only strong
    edges ink there; the teacher draws its own long strands instead): with the hair shaded, the short strokes over
    it were what stood between the step and the teacher (measured on the held-out photos at 512 px: classic +0.12,
    pastel +0.04, noir +0.19 dB). At 384 px the ink within the hair falls to 0.29x (red hair) and 0.65x (medium
    skin); outside the person the ink moves by under 0.4 % of what it moves within the hair."""
    from realtime.student import _contours, find_hair, ink_frame, person_mask

    photo = held_out(load_media, name)
    faces = step_faces(photo)
    small, at_ink = ink_frame(photo, faces)
    people = person_mask(small)
    found = find_hair(photo, faces, lambda: people)
    assert people is not None and found is not None
    loud, quiet = (_contours(small, at_ink, 0.6, 1.0, lambda: people, 0.6, h) for h in (None, lambda: found))
    hair = found[0]
    within = cv2.resize(hair, small.shape[1::-1]) > 0.5
    assert quiet[within].mean() < 0.8 * loud[within].mean()
    outside = cv2.dilate((people > 0.01).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    moved = np.abs(quiet - loud)
    assert moved[outside].mean() < 0.02 * moved[within].mean()


@pytest.mark.parametrize("character", BUILT_IN)
def test_the_contours_keep_skin_quiet_as_the_teacher_does(load_media, character, monkeypatch):
    """realtime.student.skin_quiet: the teacher inks only strong edges on skin (its skin mask), the step inked necks,
    arms and chests; with each face's skin keyed in the photo as the contours' quiet mask it is closer to the teacher
    (measured on this held-out portrait at 384 px: classic +0.21, pastel +0.15, noir +0.43 dB; over eight portraits
    -0.10 to +0.50, the medium-skin one a little further, its beige bokeh quieted where the teacher inks it). With the
    hair fully quiet (HAIR_QUIET 1.0) his beard is quiet in both already: classic +0.17, pastel +0.03, noir +0.45."""
    import realtime.student as rs
    from studio.perception import segment_person
    from studio.perception.skin import face_skin_region

    photo = held_out(load_media, "portrait_dark_background_01.jpg")  # held out (non-commercial)
    teacher, step, quiet, raw_step = _teacher_and_step(photo, character)
    face = step_faces(photo)[0]
    mask = rs.skin_quiet(photo, [face])
    assert mask is not None and mask.shape == photo.shape[:2]
    assert mask[face_skin_region(photo.shape, face)].mean() > 0.4  # half of this face is in shadow (0.57)
    assert mask[segment_person(photo) < 0.1].mean() < 0.15  # not the background
    assert rs.skin_quiet(photo, [face.scaled(0.25, 0.25)]) is None  # too small to measure
    monkeypatch.setattr(rs, "skin_quiet", lambda small, faces: None)
    loud = raw_step(outline=True)
    assert psnr(quiet, teacher) > psnr(loud, teacher) + 0.01, character


def test_noirs_colour_map_mutes_the_lake_as_its_teacher_does(load_media):
    """Noir's student turned blue water and sky teal where its teacher mutes them to steel blue; its colour map
    (training.colour_map, fitted on its pairs) brings a held-out lake closer (measured +1.25 dB at 384 px). Every
    shipped student's map is what its report says was kept."""
    from training.colour_map import without_map

    for name in BUILT_IN:
        folder = REPO / "students" / name
        kept = json.loads((folder / "report.json").read_text()).get("colour_map", {}).get("kept", False)
        assert StudentUNet.from_pretrained(folder).config.colour_map == int(kept), name
    lake = held_out(load_media, "bg_lake_mountains_01.jpg")
    factors = dict(line=0.6, texture=0.6, color=0.6)
    teacher = Stylizer(load_config())(lake, StylizeParams(character="noir", warp=0.0, **factors)).image
    mapped = StudentUNet.from_pretrained(REPO / "students" / "noir")
    x = torch.from_numpy(lake.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    f = torch.tensor([[factors[k] for k in STUDENT_FACTORS]])
    with torch.no_grad():
        with_map, network = (np.clip(m(x, f)[0].permute(1, 2, 0).numpy() * 255.0 + 0.5, 0, 255).astype(np.uint8)
                             for m in (mapped, without_map(mapped)))
    assert psnr(with_map, teacher) > psnr(network, teacher) + 0.6
