"""Perception on the real photos (../shared/data): every face, person masks, skin beyond the face, tones,
hair, pose, backends. Face counts are dlib's hand labels where MANIFEST.md gives them.

    .venv/bin/python -m pytest -q tests/test_perception.py
"""
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from studio.config import PerceptionConfig, load_config
from studio.perception import perceive
from studio.perception.faces import (FACE_OVAL, LEFT_EYE, LEFT_IRIS, RIGHT_EYE, RIGHT_IRIS, FaceModelMissing,
                                     get_face_backend)
from studio.perception.person import segment_person
from studio.perception.skin import skin_mask, skin_tone

REPO = Path(__file__).resolve().parents[1]
# dlib's hand-labelled counts (MANIFEST.md) and counts by eye; measured: every one found exactly.
GROUPS = {"group_6faces_01.jpg": 6, "group_7faces_elderly_indoor_01.jpg": 7, "group_night_flash_01.jpg": 7,
          "group_fullbody_costumes_01.jpg": 7, "two_faces_close_01.jpg": 2, "group_dim_restaurant_01.jpg": 6,
          "group_4faces_diverse_skin_01.jpg": 4, "fullbody_group_5women_01.jpg": 5}
PORTRAITS = ["portrait_light_skin_asian_01.jpg", "portrait_medium_skin_01.jpg", "portrait_dark_skin_01.jpg",
             "portrait_dark_skin_02.png", "portrait_medium_dark_skin_01.jpg",
             "portrait_glasses_beard_brown_skin_01.jpg",
             "portrait_bangs_red_hair_01.jpg", "portrait_dark_background_01.jpg", "portrait_beard_fur_01.jpg",
             "portrait_grayscale_1ch_01.jpg", "portrait_waist_up_plain_bg_01.png", "portrait_rgba_microphone_01.png",
             "lowlight_face_01.jpg", "partial_face_01.jpg", "lowres_240p_01.jpg", "turned_face_child_01.jpg"]
NO_PEOPLE = ["bg_lake_mountains_01.jpg", "bg_mountains_02.jpg", "bg_rock_arch_01.jpg", "bg_indoor_room_01.jpg",
             "bg_indoor_hall_01.jpg"]


@pytest.fixture(scope="module")
def cfg() -> PerceptionConfig:
    return load_config().perception


@pytest.fixture(scope="module")
def faces_backend(cfg):
    return get_face_backend("mediapipe", cfg)


@pytest.fixture(scope="module")
def perceived(load_media, cfg):
    """perceive() once per photo for the whole module (pose included)."""
    cache = {}

    def get(name):
        if name not in cache:
            img = load_media(name)
            cache[name] = (img, perceive(img, cfg, pose=True))
        return cache[name]

    return get


def _centre(lm, idx):
    return lm[list(idx)].mean(axis=0)


@pytest.mark.parametrize("name", PORTRAITS)
def test_one_face_with_mesh_on_portraits(faces_backend, load_media, name):
    img = load_media(name)
    faces = faces_backend.detect(img)
    assert len(faces) == 1, [f.box for f in faces]
    f = faces[0]
    assert min(f.box.width, f.box.height) > 0.08 * min(img.shape[:2]), "not the large face"
    assert f.landmarks is not None and f.landmarks.shape == (478, 2) and f.landmarks.dtype == np.float32
    assert f.keypoints is not None and f.keypoints.shape == (6, 2)
    b = f.box
    inside = ((f.landmarks[:, 0] >= b.x0 - 0.15 * b.width) & (f.landmarks[:, 0] <= b.x1 + 0.15 * b.width)
              & (f.landmarks[:, 1] >= b.y0 - 0.3 * b.height) & (f.landmarks[:, 1] <= b.y1 + 0.15 * b.height))
    assert inside.mean() > 0.95
    # The irises sit inside their eyes; "LEFT" is the person's left, on the image's right.
    lm = f.landmarks
    for iris, eye in ((LEFT_IRIS, LEFT_EYE), (RIGHT_IRIS, RIGHT_EYE)):
        e = lm[list(eye)]
        assert e[:, 0].min() - 2 <= lm[iris[0], 0] <= e[:, 0].max() + 2
    if name != "turned_face_child_01.jpg":  # a tilted head: its eyes are one above the other
        assert _centre(lm, LEFT_EYE)[0] > _centre(lm, RIGHT_EYE)[0]


@pytest.mark.parametrize("name,truth", GROUPS.items())
def test_every_face_in_group_photos(faces_backend, load_media, name, truth):
    faces = faces_backend.detect(load_media(name))
    assert truth - 1 <= len(faces) <= truth + 1, len(faces)
    assert sum(f.landmarks is not None for f in faces) >= truth - 1
    areas = [f.box.area for f in faces]
    assert areas == sorted(areas, reverse=True), "largest first"


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_no_faces_in_landscapes(faces_backend, load_media, name):
    assert faces_backend.detect(load_media(name)) == []


def test_crowd_finds_many_faces(faces_backend, load_media, cfg):
    faces = faces_backend.detect(load_media("crowd_hundreds_faces_01.jpg"))
    assert len(faces) >= 20
    assert sum(f.landmarks is not None for f in faces) <= cfg.max_faces


def test_detect_accepts_views_and_rejects_bad_input(faces_backend, load_media):
    img = load_media("two_faces_close_01.jpg")
    assert len(faces_backend.detect(img[:, ::-1])) == 2  # a mirrored view, not contiguous
    with pytest.raises(ValueError, match="RGB uint8"):
        faces_backend.detect(img.astype(np.float32))


@pytest.mark.parametrize("name", ["portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg",
                                  "portrait_glasses_beard_brown_skin_01.jpg", "portrait_waist_up_plain_bg_01.png"])
def test_person_mask_covers_portraits(perceived, name):
    img, p = perceived(name)
    assert p.person.shape == img.shape[:2] and p.person.dtype == np.float32
    assert 0.0 <= p.person.min() and p.person.max() <= 1.0
    x0, y0, x1, y1 = p.faces[0].box.clip(img.shape[1], img.shape[0]).as_int()
    assert p.person[y0:y1, x0:x1].mean() > 0.9
    assert 0.2 < (p.person > 0.5).mean() < 0.9


@pytest.mark.parametrize("name", ["fullbody_crouching_brown_skin_01.jpg", "fullbody_two_dancers_01.jpg",
                                  "two_people_fullbody_02.jpg", "fullbody_group_5women_01.jpg"])
def test_person_mask_covers_full_bodies(perceived, name):
    img, p = perceived(name)
    h, w = img.shape[:2]
    for f in p.faces:
        x0, y0, x1, y1 = f.box.clip(w, h).as_int()
        assert p.person[y0:y1, x0:x1].mean() > 0.85
    # The body the pose model sees (visible joints) lies on the mask; measured 0.73 (the dancers' stretched
    # arms are the miss) to 1.0.
    assert p.pose is not None
    vis = p.pose[p.pose[:, 2] > 0.5]
    xs, ys = np.clip(vis[:, 0].astype(int), 0, w - 1), np.clip(vis[:, 1].astype(int), 0, h - 1)
    assert len(vis) >= 10 and (p.person[ys, xs] > 0.5).mean() > 0.65
    assert 0.1 < (p.person > 0.5).mean() < 0.9


def test_dim_group_everyone_segmented(perceived):
    # The whole-photo pass misses the woman in the back of this dim restaurant; her face brings her back.
    img, p = perceived("group_dim_restaurant_01.jpg")
    for f in p.faces:
        x0, y0, x1, y1 = f.box.clip(img.shape[1], img.shape[0]).as_int()
        assert p.person[y0:y1, x0:x1].mean() > 0.6, f.box


@pytest.mark.parametrize("name", NO_PEOPLE[:3])
def test_person_and_skin_small_on_landscapes(perceived, name):
    _, p = perceived(name)
    # bg_mountains_02's sunlit red peak is taken for a person at every phase of the segmenter's grid (0.087-0.114 of
    # the photo; averaged, 0.108): a known false positive, bounded here so that it does not grow
    assert p.faces == [] and (p.person > 0.5).mean() < 0.12 and (p.skin > 0.5).mean() < 0.01
    assert p.hair is not None and p.hair.max() == 0 and p.skin_tones == []


@pytest.mark.parametrize("name", ["fullbody_crouching_brown_skin_01.jpg", "portrait_waist_up_plain_bg_01.png",
                                  "portrait_dark_skin_01.jpg"])
def test_skin_mask_reaches_neck_arms_hands(perceived, name):
    img, p = perceived(name)
    skin = p.skin > 0.5
    face_zone = np.zeros(skin.shape, bool)
    for f in p.faces:
        x0, y0, x1, y1 = f.box.expand(1.3).clip(img.shape[1], img.shape[0]).as_int()
        face_zone[y0:y1, x0:x1] = True
    outside = skin & ~face_zone
    assert outside.sum() > 0.5 * (skin & face_zone).sum(), "skin found only on the face"
    assert (p.person[skin] > 0.3).mean() > 0.95, "skin outside the person"
    f = p.faces[0]
    x0, y0, x1, y1 = f.box.as_int()
    assert p.skin[y0:y1, x0:x1].mean() > 0.4, "the face itself is skin"


def test_skin_mask_without_faces_uses_generic_range(load_media):
    img = load_media("portrait_light_skin_asian_01.jpg")
    person = segment_person(img)
    generic = skin_mask(img, [], person)
    assert generic.shape == img.shape[:2] and 0.01 < (generic > 0.5).mean() < 0.5
    assert (person[generic > 0.5] > 0.3).mean() > 0.95


def test_skin_tone_order(perceived):
    # ITA (lighter is higher) across portraits; measured 57, 42, -2, -39 degrees.
    ita, L = {}, {}
    for name in ["portrait_light_skin_asian_01.jpg", "portrait_medium_skin_01.jpg", "portrait_dark_skin_01.jpg",
                 "portrait_dark_skin_02.png"]:
        img, p = perceived(name)
        t = skin_tone(img, p.faces[0])
        assert t is not None and p.skin_tones[0] == t
        assert 0 <= t.L <= 100 and abs(t.ita - np.degrees(np.arctan2(t.L - 50, t.b))) < 1e-3
        ita[name], L[name] = t.ita, t.L
    v = list(ita.values())
    assert all(a > b + 10 for a, b in zip(v, v[1:])), ita
    # L* alone: measured 72, 49, 37 (the medium portrait is as light as the light one in L*, not in ITA).
    light, dark, darker = (L[n] for n in ("portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg",
                                          "portrait_dark_skin_02.png"))
    assert light > dark + 10 and dark > darker + 5, L


def test_skin_tone_order_in_one_photo(perceived):
    # Same light for all: dark, medium, light, light from left to right (measured ITA 10, 23, 46, 45).
    img, p = perceived("group_4faces_diverse_skin_01.jpg")
    assert len(p.skin_tones) == len(p.faces) == 4
    by_x = [t.ita for _, t in sorted(zip([f.box.x0 for f in p.faces], p.skin_tones))]
    assert by_x[0] + 5 < by_x[1] < min(by_x[2:]) - 5, by_x


def test_hair_estimate(perceived):
    img, p = perceived("portrait_bangs_red_hair_01.jpg")
    f = p.faces[0]
    assert p.hair is not None and p.hair.shape == img.shape[:2] and (p.hair > 0.5).sum() > 0.3 * f.box.area
    ys, _ = np.nonzero(p.hair > 0.5)
    assert np.percentile(ys, 10) < f.box.y0 + 0.2 * f.box.height
    oval = np.zeros(img.shape[:2], np.uint8)
    import cv2
    cv2.fillPoly(oval, [np.round(f.landmarks[list(FACE_OVAL)]).astype(np.int32)], 1)
    assert p.hair[oval > 0].mean() < 0.05, "the face is not hair"
    assert (p.skin[p.hair > 0.5] > 0.5).mean() < 0.1, "hair is taken out of the skin"


def test_blond_hair_is_hair_not_scalp(perceived):
    """The third woman of the group photo is blond: her hair above the forehead has nearly her skin's colour
    (L*a*b* 9.6 apart) but four times its fine texture. It is hair, taken out of the skin (it was painted as
    skin, a bald head)."""
    img, p = perceived("group_4faces_diverse_skin_01.jpg")
    f = sorted(p.faces, key=lambda f: f.box.x0)[2]
    b = f.box
    above = (slice(max(0, int(b.y0 - 0.35 * b.height)), int(b.y0 - 0.05 * b.height)),
             slice(int(b.x0 + 0.2 * b.width), int(b.x1 - 0.2 * b.width)))
    hair, skin = p.hair[above] > 0.5, p.skin[above] > 0.5
    assert hair.mean() > 0.3, hair.mean()  # measured 0.60 (0 before)
    assert skin[hair].mean() < 0.1


def test_short_hair_above_a_high_forehead_is_hair(perceived):
    """two_people_01, the man at the left: mediapipe's face oval stops 0.2 of the face below his hairline, so the hair
    sample band lay on his forehead and his short dark hair was taken for a bald crown (no hair at all, painted as
    skin). The hairline is found going up through the forehead (hair_mask's _hairline)."""
    img, p = perceived("two_people_01.jpg")
    f = sorted(p.faces, key=lambda f: f.box.x0)[0]
    oval = f.landmarks[list(FACE_OVAL)]
    top, fh, cx, fw = oval[:, 1].min(), np.ptp(oval[:, 1]), oval[:, 0].mean(), np.ptp(oval[:, 0])
    crown = (slice(max(0, int(top - 0.35 * fh)), int(top - 0.12 * fh)), slice(int(cx - 0.35 * fw), int(cx + 0.35 * fw)))
    on = p.person[crown] > 0.5
    assert (p.hair[crown] > 0.5)[on].mean() > 0.35  # measured 0.49 (0 before the hairline, 0.42 before the cap)


def test_crowd_hair_stays_on_the_head(perceived):
    """crowd_hundreds_faces_01, the man in glasses at the lower left: the long-hair ellipse took the dark sweater of the
    man behind him and the clothes below as his hair, and a dark halo was painted round his head (and a hijab beside
    him was painted as hair). In a crowd each head's hair is looked for on its skull only: his crown is hair, what lies
    beside his head and on his shoulder is not (measured 0.86 / 0.01 / 0.00; 0.96 / 0.88 / 0.64 before)."""
    img, p = perceived("crowd_hundreds_faces_01.jpg")
    h, w = img.shape[:2]
    f = min(p.faces, key=lambda f: np.hypot(f.box.center[0] / w - 0.047, f.box.center[1] / h - 0.798))
    assert abs(f.box.center[0] / w - 0.047) < 0.02 and abs(f.box.center[1] / h - 0.798) < 0.03
    oval = f.landmarks[list(FACE_OVAL)]
    top, fh, fw = oval[:, 1].min(), np.ptp(oval[:, 1]), np.ptp(oval[:, 0])
    cx, cy = oval.mean(axis=0)
    crown = (slice(int(top - 0.3 * fh), int(top - 0.05 * fh)), slice(int(cx - 0.3 * fw), int(cx + 0.3 * fw)))
    beside = (slice(int(cy), int(cy + 0.9 * fh)), slice(int(cx + 0.75 * fw), int(cx + 1.05 * fw)))
    shoulder = (slice(int(cy + 0.6 * fh), int(cy + 1.1 * fh)), slice(int(cx - 1.0 * fw), int(cx - 0.6 * fw)))
    assert p.hair[crown].mean() > 0.6 and p.hair[beside].mean() < 0.2 and p.hair[shoulder].mean() < 0.2


def test_no_face_is_anothers_hair(perceived):
    """The night group: the blonde's head region reaches the face above hers, whose chin and jaw have her hair's
    colour (a blonde's colour is a skin's): 15 % of that face was her hair. No face's mesh is anyone's hair (each
    face under 4 %: the mask's blur at the edge; measured 1.5-3.2 %), and each face's own hair is labelled its
    head's: hair_heads holds 1 + the face's index."""
    img, p = perceived("group_night_flash_01.jpg")
    import cv2
    assert p.hair_heads is not None and p.hair_heads.shape == img.shape[:2] and p.hair_heads.dtype == np.uint16
    for i, f in enumerate(p.faces):
        hull = np.zeros(img.shape[:2], np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(f.landmarks[:468, :2]).astype(np.int32)), 1)
        assert p.hair[hull > 0].mean() < 0.04, i
        top = f.landmarks[list(FACE_OVAL)][:, 1].min()
        cx = int(f.landmarks[list(FACE_OVAL)][:, 0].mean())
        above = p.hair_heads[max(0, int(top - 0.15 * f.box.height)):int(top), cx - 3:cx + 4]
        hair_above = p.hair[max(0, int(top - 0.15 * f.box.height)):int(top), cx - 3:cx + 4] > 0.5
        if hair_above.mean() > 0.5:
            assert (above[hair_above] == i + 1).mean() > 0.8, i


def test_hair_by_a_dark_background_is_the_hairs_colour(perceived):
    """In a dim room the person mask runs a few pixels past a head into the black round it, and the colour sample
    band above the forehead reaches past the crown of short hair: its median was the black, the colour model took
    in the black round the head, and the restaurant's blond man (and the grey-haired man beside him) were painted
    with a dark brown mop. The sample's pixels of the background's colour beside them count for little now. Median
    L* of each head's own hair in the photo: measured 23.2 / 20.8 (7.7 / 12.6 before); the night group's blonde at
    the right 35.5 (2.5)."""
    from studio.color import rgb_to_lab

    for name, nth, least in (("group_dim_restaurant_01.jpg", 1, 16.0), ("group_dim_restaurant_01.jpg", 2, 16.0),
                             ("group_night_flash_01.jpg", 5, 20.0)):
        img, p = perceived(name)
        i = sorted(range(len(p.faces)), key=lambda j: p.faces[j].box.x0)[nth]
        own = (p.hair_heads == i + 1) & (p.hair > 0.5)
        assert own.sum() > 100, (name, nth, int(own.sum()))
        assert float(np.median(rgb_to_lab(img)[..., 0][own])) > least, (name, nth)


def test_a_crowns_shine_is_hair(perceived):
    """The colour model alone (within a spread of the sample above the forehead) cut a studio light's shine out of
    the red-haired portrait's crown: a hole the abstraction painted as a pale patch and inked as a maze of short
    strokes. The light on the crown (hair._crown_light) is hair: on the person, in the skull's box from the crown to
    half a face's height above the face, the mask's mean is 0.61 (0.28 before)."""
    from studio.perception.faces import FACE_OVAL

    img, p = perceived("portrait_bangs_red_hair_01.jpg")
    oval = p.faces[0].landmarks[list(FACE_OVAL), :2]
    cx, top, fw, fh = oval[:, 0].mean(), oval[:, 1].min(), np.ptp(oval[:, 0]), np.ptp(oval[:, 1])
    box = (slice(max(0, int(top - 0.5 * fh)), int(top - 0.3 * fh)), slice(int(cx - 0.15 * fw), int(cx + 0.15 * fw)))
    on = p.person[box] > 0.5
    assert on.sum() > 5000
    assert float(p.hair[box][on].mean()) > 0.5


def test_a_dark_crowns_light_is_hair_not_skin(perceived):
    """Near-black hair shows its brown where a light falls on it: the light Asian portrait's crown (chroma ~15 in
    hair of chroma 4, and higher than the skull's ellipse reached) was taken for skin and painted a tan cap under an
    ink line. Within a twelfth of her face's height below the top of her head, over its middle, the hair mask's mean
    is 0.88 and the skin's 0.08 (before: 0.27 and 0.62)."""
    from studio.perception.faces import FACE_OVAL

    img, p = perceived("portrait_light_skin_asian_01.jpg")
    oval = p.faces[0].landmarks[list(FACE_OVAL), :2]
    cx, fw, fh = oval[:, 0].mean(), np.ptp(oval[:, 0]), np.ptp(oval[:, 1])
    crown = int(np.argmax(p.person[:, int(cx)] > 0.5))  # the top of her head
    box = (slice(crown, crown + int(0.08 * fh)), slice(int(cx - 0.2 * fw), int(cx + 0.2 * fw)))
    on = p.person[box] > 0.5
    assert on.sum() > 2000
    assert float(p.hair[box][on].mean()) > 0.6
    assert float(p.skin[box][on].mean()) < 0.3


def test_weighted_quantile():
    from studio.perception.hair import weighted_quantile

    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (101, 3))
    ones = np.ones(len(x))
    assert np.array_equal(weighted_quantile(x, ones, 0.5), np.median(x, axis=0))
    assert np.array_equal(weighted_quantile(x, ones, 0.8), np.percentile(x, 80, axis=0))
    # Pixels of weight 0 do not count; a heavier half pulls the median into it.
    x = np.array([[1.0], [2.0], [3.0], [10.0], [11.0], [12.0]])
    assert weighted_quantile(x, np.array([1, 1, 1, 0, 0, 0.0]), 0.5)[0] == 2.0
    assert weighted_quantile(x, np.array([1, 1, 1, 4, 4, 4.0]), 0.5)[0] == 11.0


def test_a_hair_samples_background_pixels_count_little_unless_they_are_most_of_it():
    from studio.perception.hair import _background_weights

    black = np.zeros((1, 3))
    hair = np.array([45.0, 8.0, 20.0])
    sample = np.array([hair] * 60 + [[1.0, 0.0, 0.0]] * 40)
    w = _background_weights(sample, np.repeat(black, 100, axis=0), np.ones(100))
    assert np.all(w[:60] == 1.0) and np.all(w[60:] == 0.0)
    # Far from any background (near 0), everything counts.
    assert np.all(_background_weights(sample, np.repeat(black, 100, axis=0), np.zeros(100)) == 1.0)
    # Black hair against black: the sample is mostly the background's colour, and all of it counts.
    sample = np.array([hair] * 10 + [[3.0, 1.0, 0.0]] * 90)
    assert np.all(_background_weights(sample, np.repeat(black, 100, axis=0), np.ones(100)) == 1.0)


def test_no_hair_on_bald_heads(perceived):
    # A collage of mostly bald men (measured 0.6 % of the photo, 1.3 % before crowds' hair was kept on the skull;
    # 13 % on the red-haired portrait).
    _, p = perceived("collage_many_faces_01.jpg")
    assert len(p.faces) >= 20 and (p.hair > 0.5).mean() < 0.01


def test_perceive_timings_and_pose(perceived):
    img, p = perceived("fullbody_crouching_brown_skin_01.jpg")
    assert set(p.timings) == {"faces", "person", "skin", "hair", "pose"} and all(v >= 0 for v in p.timings.values())
    assert p.pose is not None and p.pose.shape == (33, 3)
    nose = p.pose[0, :2]
    f = p.faces[0]
    assert f.box.x0 - 10 <= nose[0] <= f.box.x1 + 10 and f.box.y0 - 10 <= nose[1] <= f.box.y1 + 10


def test_insightface_missing_models_names_the_folder(tmp_path):
    cfg = PerceptionConfig(face_backend="insightface", insightface_root=str(tmp_path))
    with pytest.raises(FaceModelMissing) as exc:
        get_face_backend("insightface", cfg)
    msg = str(exc.value)
    assert str(tmp_path / "models" / "buffalo_l") in msg and "buffalo_l" in msg and "insightface_root" in msg


def test_insightface_empty_model_folder_is_missing(tmp_path):
    (tmp_path / "models" / "buffalo_l").mkdir(parents=True)
    with pytest.raises(FaceModelMissing, match="buffalo_l"):
        get_face_backend("insightface", PerceptionConfig(insightface_root=str(tmp_path)))


def test_unknown_backend_lists_choices(cfg):
    with pytest.raises(ValueError, match="insightface.*mediapipe|mediapipe.*insightface"):
        get_face_backend("dlib", cfg)


def test_backend_is_cached(cfg):
    assert get_face_backend("mediapipe", cfg) is get_face_backend("mediapipe", cfg)


def test_perception_import_is_lazy():
    code = ("import sys, studio, studio.perception, studio.perception.faces, studio.perception.skin, "
            "studio.perception.tracking; "
            "heavy = [m for m in ('mediapipe', 'torch', 'gradio', 'insightface', 'trackers', 'supervision') "
            "if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mediapipe_start_up_chatter_is_filtered(tmp_path):
    # mediapipe prints absl warnings on stderr when its graphs start; only those known lines are dropped.
    code = ("import sys, numpy as np; from studio.config import PerceptionConfig; "
            "from studio.perception import perceive; "
            "img = np.zeros((64, 64, 3), np.uint8); perceive(img, PerceptionConfig(), pose=True); "
            "sys.stderr.write('real error line\\n')")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "inference_feedback_manager" not in run.stderr and "real error line" in run.stderr, run.stderr


def test_people_in_a_crowd_are_segmented_by_their_faces(load_media):
    """The segmenter's whole-image pass misses most of a crowd; a second pass around each face it missed covers them.
    The budget went to the 8 largest faces whether missed or not: 11 of 35 faces were on the person mask, and the
    rest were painted as background (smoothed away, under the background's ink). Measured now: 30 of 35."""
    import cv2

    img = load_media("crowd_hundreds_faces_01.jpg")
    f = 1024 / max(img.shape[:2])
    img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    p = perceive(img, load_config().perception)
    # The faces of the people in front (30 px and more; the crowd tile also finds 16-29 px faces further back, which
    # stay background). Measured: 14 of 15.
    covered = [p.person[int(fc.box.y0):int(fc.box.y1) + 1, int(fc.box.x0):int(fc.box.x1) + 1].mean() > 0.5
               for fc in p.faces if fc.box.width >= 30]
    assert len(covered) >= 12 and np.mean(covered) >= 0.75, (sum(covered), len(covered))


def test_a_crowd_face_too_small_for_the_finest_tile_is_found(faces_backend, load_media):
    """The crowd's 37-px face in a pink headscarf and glasses (1024 px photo) is not found on the 287-px tiles; the
    crowd tile (five of the crowd's small faces wide) finds it. Without it she was painted as background, with a
    silhouette line around her scarf."""
    import cv2

    from studio.types import Box

    img = load_media("crowd_hundreds_faces_01.jpg")
    f = 1024 / max(img.shape[:2])
    img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    her = Box(137, 442, 174, 479)  # dlib's box for her face
    assert max(fc.box.iou(her) for fc in faces_backend.detect(img)) > 0.5


def _fitted(img, side: int = 512):  # the photo fitted to `side` px
    import cv2

    k = side / max(img.shape[:2])
    return cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_AREA)


def test_the_audiences_faces_stay_found_under_a_shift(faces_backend, load_media):
    """Whether the fine tiles run hangs on the largest face's size (`_tile_sizes`); taken from the largest raw box,
    which changes by 10-20 % under a pixel's shift (89 -> 98 px against the 96 px cut at 512 px), the audience's
    tiles went and their border face with them (5 -> 4 faces at 512 px, 8 -> 4 at 1024). Each face's size is now its
    boxes' score-weighted mean (84.2 / 85.2 px)."""
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import shifted

    from studio.perception.faces import _largest_face

    full = load_media("profile_faces_audience_blue_light_01.jpg")
    for side in (1024, 512):
        img = _fitted(full, side)
        a, b = faces_backend._detect_boxes(img), faces_backend._detect_boxes(shifted(img))
        assert len(a) == len(b) >= 5, (side, len(a), len(b))
    sizes = []  # at 512 px
    for x in (img, shifted(img)):
        raw = faces_backend._run_detector(faces_backend._full, x, 0, 0) + \
            faces_backend._run_detector(faces_backend._short, x, 0, 0)
        sizes.append(_largest_face(raw))
    assert abs(sizes[1] - sizes[0]) < 0.04 * sizes[0], sizes


def test_steady_mesh_under_noise_and_shift(cfg, load_media):
    # Issue 14: a grey level of noise moved this 254-px face's mesh points by 0.69 px on average with one integer
    # crop (0.52 under a one-pixel shift), and the strokes drawn from them moved with them. A sub-pixel crop and
    # the average over MESH_FRAMINGS: 0.11 and 0.34 measured.
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import noisy, shifted

    img = _fitted(load_media("portrait_glasses_beard_brown_skin_01.jpg"))
    backend = get_face_backend("mediapipe", replace(cfg, steady=True))
    (a,), (b,), (c,) = backend.detect(img), backend.detect(noisy(img)), backend.detect(shifted(img))
    assert a.box.width > 200
    assert np.abs(b.landmarks[:, :2] - a.landmarks[:, :2]).mean() < 0.3
    assert np.abs(c.landmarks[:, :2] - 1.0 - a.landmarks[:, :2]).mean() < 0.45


def test_a_mesh_framed_by_itself_follows_a_shift(cfg, load_media):
    # Issue 14: the mesh answers its crop's framing, and the detector's box that framed it moves by a pixel or more
    # under a pixel's shift. The studio meshes each face again on crops framed by its first mesh (mesh_framing) and
    # averages the two: the six frontal faces' points moved 0.106 px on average under a shift, now 0.057.
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import shifted

    backend = get_face_backend("mediapipe", replace(cfg, steady=True))
    moved = {"box only": [], "reframed": []}
    for name in ("group_4faces_diverse_skin_01.jpg", "two_people_01.jpg"):
        img = _fitted(load_media(name))
        moved_img = shifted(img)
        after = backend.detect(moved_img)
        for a in backend.detect(img):
            b = min(after, key=lambda f: np.hypot(*np.subtract(f.box.center, a.box.center)))
            assert a.has_mesh and b.has_mesh
            moved["reframed"].append(float(np.abs(b.landmarks[:, :2] - 1.0 - a.landmarks[:, :2]).mean()))
            first = [backend._mesh_on(x, *f.box.center, 0.95 * max(f.box.width, f.box.height), f, True)
                     for x, f in ((img, a), (moved_img, b))]
            moved["box only"].append(float(np.abs(first[1] - 1.0 - first[0]).mean()))
    assert len(moved["reframed"]) == 6
    assert np.mean(moved["reframed"]) < 0.7 * np.mean(moved["box only"]), moved


def test_small_faces_meshes_are_steady_too(cfg, load_media):
    # Faces under 42 px (the night group's three, the elderly seven's six at 512 px) were meshed on one crop: their
    # points moved 0.09 / 0.12 px on average under a grey level of noise, against 0.06 / 0.08 averaged over
    # MESH_FRAMINGS (0.64 of it, both photos together); the same backend without `steady` is the one-crop answer.
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import noisy

    moved = {}
    for steady in (False, True):
        backend = get_face_backend("mediapipe", replace(cfg, steady=steady))
        moved[steady] = []
        for name in ("group_night_flash_01.jpg", "group_7faces_elderly_indoor_01.jpg"):
            img = _fitted(load_media(name))
            after = backend.detect(noisy(img))
            for a in backend.detect(img):
                if a.landmarks is None or a.box.width >= 42:
                    continue
                b = min(after, key=lambda f: np.hypot(*np.subtract(f.box.center, a.box.center)))
                moved[steady].append(float(np.abs(b.landmarks[:, :2] - a.landmarks[:, :2]).mean()))
    assert len(moved[True]) >= 6
    assert np.mean(moved[True]) < 0.85 * np.mean(moved[False]), moved


def test_a_framing_that_meshes_a_neighbour_is_not_averaged_in(cfg, load_media):
    # One of the four crops around the dim restaurant's right-hand man meshed the woman beside him (37 px away) and
    # the average put his eyes at 0.16 and 0.48 of his box's width (his strokes on his cheek); now 0.30 and 0.65.
    backend = get_face_backend("mediapipe", cfg)
    faces = backend.detect(_fitted(load_media("group_dim_restaurant_01.jpg")))
    man = max(faces, key=lambda f: f.box.x0)  # the right-hand man, the largest face
    assert man.landmarks is not None and man.box.width > 50
    xs = sorted((man.landmarks[list(eye), 0].mean() - man.box.x0) / man.box.width for eye in (LEFT_EYE, RIGHT_EYE))
    assert 0.22 < xs[0] < 0.45 and 0.55 < xs[1] < 0.78, xs


def test_small_blobs_fade_out_with_their_size():
    from studio.perception.person import remove_small_blobs

    mask = np.zeros((200, 200), np.float32)
    mask[10:60, 10:60] = 1.0  # 2500 px: kept
    mask[100:103, 100:103] = 1.0  # 9 px: gone
    kept = []
    for side in range(4, 15):  # a blob of 36 to 126 px (0.002 of the image: 80), a row at a time: faded in smoothly
        m = mask.copy()
        m[150:150 + side, 150:159] = 1.0
        grown = m.copy()
        grown[150 + side, 150:159] = 1.0
        a, b = remove_small_blobs(m, 0.002), remove_small_blobs(grown, 0.002)
        assert np.array_equal(a[:80, :80], mask[:80, :80]) and a[100:103, 100:103].max() == 0.0
        assert np.abs(a - b)[150:150 + side].max() < 0.25, side  # cut by a count of pixels it jumped 0 -> 1
        kept.append(float(a[150:150 + side, 150:159].mean()))
    assert kept[0] == 0.0 and kept[-1] == 1.0 and np.all(np.diff(kept) >= 0), kept


def test_a_grey_level_of_noise_moves_the_skin_mask_by_little(cfg, load_media):
    # Small skin blobs were cut whole by their count of pixels over 0.5: in the audience photo a grey level of noise
    # took away or left whole blobs of the crowd's skin (the mask's 99.9th-percentile change 0.53; now 0.20).
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import noisy

    img = _fitted(load_media("profile_faces_audience_blue_light_01.jpg"))
    per = perceive(img, cfg)
    change = np.abs(skin_mask(img, per.faces, per.person) - skin_mask(noisy(img), per.faces, per.person))
    assert float(np.percentile(change, 99.9)) < 0.35


@pytest.mark.parametrize("name, least", [("profile_faces_audience_blue_light_01.jpg", 37.0),
                                         ("group_night_flash_01.jpg", 39.0), ("portrait_medium_skin_01.jpg", 39.0)])
def test_the_skin_models_learn_the_skins_colour_not_its_noise(cfg, load_media, name, least):
    # Issue 14: each face's skin model was learnt from, and looked up on, single pixels, so a grey level of noise
    # (several a*b* units in the dark) widened a dark face's model and moved the mask. Seen through a Gaussian of
    # COLOUR_SEEN_SIGMA, the same faces and person: the mask's PSNR under noise 34.2 -> 38.5, 37.3 -> 40.5,
    # 37.3 -> 40.8.
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import noisy

    img = _fitted(load_media(name))
    per = perceive(img, cfg)
    change = skin_mask(img, per.faces, per.person) - skin_mask(noisy(img), per.faces, per.person)
    assert 10 * np.log10(1.0 / float(np.mean(change.astype(np.float64) ** 2))) > least


@pytest.mark.parametrize("name, least", [("group_night_flash_01.jpg", 44.5), ("portrait_medium_skin_01.jpg", 44.0),
                                         ("group_4faces_diverse_skin_01.jpg", 46.5),
                                         ("profile_faces_audience_blue_light_01.jpg", 48.0)])
def test_the_hair_is_told_by_its_colour_not_its_noise(cfg, load_media, name, least):
    # Issue 14: a head analysed at its own size read its hair's and skin's colours from single pixels. Through a
    # Gaussian of COLOUR_SEEN_SIGMA (the texture still of the pixels), the same faces, person and skin: the hair
    # mask's PSNR under a grey level of noise 42.8 -> 46.2, 38.6 -> 49.0, 43.1 -> 49.8, 44.9 -> 51.0 dB.
    from studio.perception.hair import hair_mask

    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import noisy

    img = _fitted(load_media(name))
    per = perceive(img, cfg)
    change = hair_mask(img, per.faces, per.person, per.skin) - hair_mask(noisy(img), per.faces, per.person, per.skin)
    assert 10 * np.log10(1.0 / float(np.mean(change.astype(np.float64) ** 2))) > least


def test_steady_person_mask_under_a_shift(load_media):
    # The segmenter averaged over STEADY_PHASES of its grid: the mask of a photo moved by one pixel, moved back,
    # changes far less than with one phase (measured 0.0015 -> 0.0005, 0.0011 -> 0.0002, dancers 0.0140 -> 0.0032:
    # 0.24 of it; the earlier four phases along one diagonal of one pixel gave 0.52).
    sys.path.insert(0, str(REPO / "tools"))
    from teacher_stability import shifted

    change = {True: 0.0, False: 0.0}
    for name in ("portrait_glasses_beard_brown_skin_01.jpg", "portrait_light_skin_asian_01.jpg",
                 "fullbody_two_dancers_01.jpg"):
        img = _fitted(load_media(name))
        for steady in change:
            m, ms = segment_person(img, steady=steady), segment_person(shifted(img), steady=steady)
            change[steady] += float(np.abs(ms[1:, 1:] - m[:-1, :-1]).mean())
    assert change[True] < 0.4 * change[False], change


def test_backends_that_differ_only_in_steadiness_share_their_models(cfg):
    # The stream asks for a one-crop backend beside the studio's steady one: the same models and the lock around
    # them (mediapipe graphs are not thread-safe), each with its own configuration.
    steady = get_face_backend("mediapipe", replace(cfg, steady=True))
    quick = get_face_backend("mediapipe", replace(cfg, steady=False))
    assert quick is not steady and quick.cfg.steady is False and steady.cfg.steady is True
    assert quick._mesh is steady._mesh and quick._full is steady._full and quick._lock is steady._lock
    assert get_face_backend("mediapipe", replace(cfg, steady=False)) is quick


def test_a_faces_skin_model_applies_near_its_person(load_media, cfg):
    # The blue-lit audience: its smallest face (40 px at 512, front left) has a broad skin model; applied to the whole
    # photo it marked the white T-shirt at the right and the crowd behind as skin, and that face, found on the photo
    # but not on it moved by a pixel, changed the skin mask by 0.24 (mean). Each face's model now applies within its
    # reach: without that face the mask changes by 0.09, and beyond its reach by no more than the refinement's leak.
    from studio.perception.skin import skin_reach

    img = _fitted(load_media("profile_faces_audience_blue_light_01.jpg"))
    p = perceive(img, replace(cfg, steady=True))
    assert len(p.faces) >= 5
    small = min(p.faces, key=lambda f: f.box.area)
    rest = [f for f in p.faces if f is not small]
    change = np.abs(skin_mask(img, p.faces, p.person) - skin_mask(img, rest, p.person))
    y0, y1, x0, x1, weight = skin_reach(img.shape, small)
    beyond = np.ones(change.shape, bool)
    beyond[y0:y1, x0:x1] = weight <= 0
    assert change.mean() < 0.15 and beyond.mean() > 0.5 and change[beyond].max() < 0.02, (change.mean(),
                                                                                            change[beyond].max())


@pytest.mark.parametrize("name", ["portrait_grayscale_1ch_01.jpg", "portrait_beard_fur_01.jpg"])
def test_a_grey_faces_skin_model_leaves_grey_clothes(perceived, name):
    # A black-and-white photo, and a desaturated grade whose face is nearly grey (its skin's chroma 2.2 standard
    # deviations from grey): a chroma model of such a face matched every grey pixel of the right lightness, and the
    # teacher painted the shirt and the fur cloak in skin colours (skin over 0.79 and 0.53 of the person; the
    # coloured portraits' 0.15-0.64 include arms and necks). Skin is now only what is nearer the face's chroma than
    # grey's: their faces stay skin, their clothes do not.
    img, p = perceived(name)
    face_zone = np.zeros(p.skin.shape, bool)
    for f in p.faces:
        x0, y0, x1, y1 = f.box.clip(img.shape[1], img.shape[0]).as_int()
        face_zone[y0:y1, x0:x1] = True
    person = p.person > 0.5
    assert (p.skin[person & ~face_zone] > 0.5).mean() < 0.15, (p.skin[person & ~face_zone] > 0.5).mean()
    f = p.faces[0]
    x0, y0, x1, y1 = f.box.as_int()
    assert p.skin[y0:y1, x0:x1].mean() > 0.4, "the face itself is skin"
