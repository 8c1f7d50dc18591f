"""Perception on the real photos: every face, person masks, skin beyond the face, tones, backends."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.config import PerceptionConfig, load_config
from studio.perception import perceive
from studio.perception.faces import FaceModelMissing, get_face_backend
from studio.perception.skin import skin_tone

REPO = Path(__file__).resolve().parents[1]
# dlib's hand-labelled counts (MANIFEST.md) and single portraits
GROUPS = {"group_6faces_01.jpg": 6, "group_7faces_elderly_indoor_01.jpg": 7, "group_night_flash_01.jpg": 7,
          "group_fullbody_costumes_01.jpg": 7, "two_faces_close_01.jpg": 2, "group_dim_restaurant_01.jpg": 6,
          "group_4faces_diverse_skin_01.jpg": 4, "fullbody_group_5women_01.jpg": 5}
PORTRAITS = ["portrait_light_skin_asian_01.jpg", "portrait_medium_skin_01.jpg", "portrait_dark_skin_01.jpg",
             "portrait_dark_skin_02.png", "portrait_medium_dark_skin_01.jpg", "portrait_glasses_beard_brown_skin_01.jpg",
             "portrait_bangs_red_hair_01.jpg", "portrait_dark_background_01.jpg", "portrait_beard_fur_01.jpg",
             "portrait_grayscale_1ch_01.jpg", "portrait_waist_up_plain_bg_01.png", "portrait_rgba_microphone_01.png",
             "lowlight_face_01.jpg", "partial_face_01.jpg", "lowres_240p_01.jpg", "turned_face_child_01.jpg"]
NO_PEOPLE = ["bg_lake_mountains_01.jpg", "bg_mountains_02.jpg", "bg_rock_arch_01.jpg", "bg_indoor_room_01.jpg",
             "bg_indoor_hall_01.jpg"]


@pytest.fixture(scope="module")
def faces_backend():
    return get_face_backend("mediapipe", load_config().perception)


@pytest.mark.parametrize("name", PORTRAITS)
def test_one_face_with_mesh_on_portraits(faces_backend, load_media, name):
    img = load_media(name)
    faces = faces_backend.detect(img)
    assert len(faces) == 1, [f.box for f in faces]
    f = faces[0]
    assert f.landmarks is not None and f.landmarks.shape == (478, 2)
    inside = ((f.landmarks[:, 0] >= f.box.x0 - 0.15 * f.box.width) & (f.landmarks[:, 0] <= f.box.x1 + 0.15 * f.box.width)
              & (f.landmarks[:, 1] >= f.box.y0 - 0.3 * f.box.height) & (f.landmarks[:, 1] <= f.box.y1 + 0.15 * f.box.height))
    assert inside.mean() > 0.95


@pytest.mark.parametrize("name,truth", GROUPS.items())
def test_every_face_in_group_photos(faces_backend, load_media, name, truth):
    faces = faces_backend.detect(load_media(name))
    assert truth - 1 <= len(faces) <= truth + 1, len(faces)
    assert sum(f.landmarks is not None for f in faces) >= truth - 1


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_no_faces_in_landscapes(faces_backend, load_media, name):
    assert faces_backend.detect(load_media(name)) == []


def test_crowd_finds_many_faces(faces_backend, load_media):
    faces = faces_backend.detect(load_media("crowd_hundreds_faces_01.jpg"))
    assert len(faces) >= 10
    meshed = [f for f in faces if f.landmarks is not None]
    assert len(meshed) <= load_config().perception.max_faces


@pytest.mark.parametrize("name", ["portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg",
                                  "fullbody_crouching_brown_skin_01.jpg", "fullbody_two_dancers_01.jpg",
                                  "two_people_fullbody_02.jpg"])
def test_person_mask_covers_people(load_media, name):
    img = load_media(name)
    p = perceive(img, load_config().perception)
    assert p.person.shape == img.shape[:2] and p.person.dtype == np.float32
    for f in p.faces:
        x0, y0, x1, y1 = f.box.clip(img.shape[1], img.shape[0]).as_int()
        assert p.person[y0:y1, x0:x1].mean() > 0.85
    assert 0.08 < (p.person > 0.5).mean() < 0.9


@pytest.mark.parametrize("name", NO_PEOPLE[:3])
def test_person_mask_small_on_landscapes(load_media, name):
    p = perceive(load_media(name), load_config().perception)
    assert (p.person > 0.5).mean() < 0.1


@pytest.mark.parametrize("name", ["fullbody_crouching_brown_skin_01.jpg", "portrait_waist_up_plain_bg_01.png",
                                  "portrait_dark_skin_01.jpg"])
def test_skin_mask_reaches_neck_arms_hands(load_media, name):
    img = load_media(name)
    p = perceive(img, load_config().perception)
    skin = p.skin > 0.5
    face_zone = np.zeros(skin.shape, bool)
    for f in p.faces:
        x0, y0, x1, y1 = f.box.expand(1.3).clip(img.shape[1], img.shape[0]).as_int()
        face_zone[y0:y1, x0:x1] = True
    outside = skin & ~face_zone
    assert outside.sum() > 0.5 * (skin & face_zone).sum(), "skin found only on the face"
    assert (p.person[skin] > 0.3).mean() > 0.95, "skin outside the person"


def test_skin_tone_order(load_media):
    cfg = load_config().perception
    L = {}
    for name in ["portrait_light_skin_asian_01.jpg", "portrait_glasses_beard_brown_skin_01.jpg", "portrait_dark_skin_02.png"]:
        img = load_media(name)
        p = perceive(img, cfg)
        L[name] = skin_tone(img, p.faces[0]).L
        assert p.skin_tones[0] is not None and abs(p.skin_tones[0].L - L[name]) < 1e-3
    a, b, c = L.values()
    assert a > b > c, L


def test_hair_estimate_above_the_face(load_media):
    img = load_media("portrait_bangs_red_hair_01.jpg")
    p = perceive(img, load_config().perception)
    f = p.faces[0]
    assert p.hair is not None and (p.hair > 0.5).sum() > 0.3 * f.box.area
    ys, _ = np.nonzero(p.hair > 0.5)
    assert np.percentile(ys, 10) < f.box.y0 + 0.2 * f.box.height


def test_pose_when_asked(load_media):
    img = load_media("fullbody_crouching_brown_skin_01.jpg")
    p = perceive(img, load_config().perception, pose=True)
    assert p.pose is not None and p.pose.shape == (33, 3) and "pose" in p.timings
    nose = p.pose[0, :2]
    f = p.faces[0]
    assert f.box.x0 - 10 <= nose[0] <= f.box.x1 + 10 and f.box.y0 - 10 <= nose[1] <= f.box.y1 + 10


def test_insightface_missing_models_names_the_folder(tmp_path):
    cfg = PerceptionConfig(face_backend="insightface", insightface_root=str(tmp_path))
    with pytest.raises(FaceModelMissing) as exc:
        get_face_backend("insightface", cfg)
    assert str(tmp_path / "models" / "buffalo_l") in str(exc.value)


def test_unknown_backend_lists_choices():
    with pytest.raises(ValueError, match="insightface.*mediapipe|mediapipe.*insightface"):
        get_face_backend("dlib", load_config().perception)


def test_perception_import_is_lazy():
    code = "import sys, studio.perception; sys.exit(1 if 'mediapipe' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
