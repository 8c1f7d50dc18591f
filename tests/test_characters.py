"""Characters from reference images: the fitted profile follows the references; the folder round-trips."""
import cv2
import numpy as np
import pytest

from studio import StylizeParams, Stylizer, load_config
from studio.characters import character_from_profile, fit_profile, list_characters, load_character, save_character
from studio.color import rgb_to_lab

PHOTOS = ["portrait_light_skin_asian_01.jpg", "portrait_medium_skin_01.jpg", "portrait_glasses_beard_brown_skin_01.jpg",
          "portrait_dark_skin_01.jpg", "group_4faces_diverse_skin_01.jpg", "two_people_01.jpg"]


@pytest.fixture(scope="module")
def stylizer():
    return Stylizer(load_config())


@pytest.fixture(scope="module")
def references(stylizer, load_media):
    """Webtoon-style references of two looks, drawn by the classic teacher from real photos."""
    out = {}
    for look in ("noir", "pastel"):
        imgs = []
        for name in PHOTOS:
            img = load_media(name)
            f = 480 / max(img.shape[:2])
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            imgs.append(stylizer(img, StylizeParams(character=look)).image)
        out[look] = imgs
    return out


def faces_of(stylizer, imgs):
    return [stylizer.perceive(i).faces for i in imgs]


def test_profiles_follow_the_references(stylizer, references):
    cfg = load_config()
    noir = fit_profile(references["noir"], cfg, faces_of(stylizer, references["noir"]))
    pastel = fit_profile(references["pastel"], cfg, faces_of(stylizer, references["pastel"]))
    assert len(noir.palette) == 16 and noir.n_faces >= 6
    chroma = lambda p: np.mean([np.hypot(*rgb_to_lab(  # noqa: E731
        np.array([[[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)]]], np.float32))[0, 0, 1:]) for c in p.palette])
    lightness = lambda p: np.mean([rgb_to_lab(  # noqa: E731
        np.array([[[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)]]], np.float32))[0, 0, 0] for c in p.palette])
    assert noir.line_weight > pastel.line_weight and noir.ink_coverage > pastel.ink_coverage
    assert lightness(pastel) > lightness(noir)
    assert chroma(noir) < chroma(pastel) + 5
    a = character_from_profile("noir_fit", noir, load_character("classic", cfg))
    b = character_from_profile("pastel_fit", pastel, load_character("classic", cfg))
    assert a.line_weight > b.line_weight and a.defaults.line > b.defaults.line


def test_saved_character_is_listed_and_stylizes(stylizer, references, tmp_path, load_media):
    cfg = load_config(None, [f"data_dir={tmp_path}"])
    refs = references["pastel"]
    profile = fit_profile(refs, cfg, faces_of(stylizer, refs))
    for bad in ("My Hero/../x", "../../etc", ".hidden", "classic", "Pastel"):  # refused, not silently changed
        with pytest.raises(ValueError, match="not allowed|built-in"):
            save_character(character_from_profile(bad, profile, load_character("classic", cfg)), profile, refs, cfg)
    assert not (tmp_path / "characters").exists() or not any((tmp_path / "characters").iterdir())
    ch = character_from_profile("하나_2", profile, load_character("classic", cfg))  # any script's letters
    folder = save_character(ch, profile, refs, cfg)
    assert folder == tmp_path / "characters" / "하나_2"
    assert (folder / "character.yaml").is_file() and (folder / "profile.json").is_file()
    assert len(list((folder / "references").glob("*.png"))) == len(refs)
    names = [c.name for c in list_characters(cfg)]
    assert folder.name in names and "classic" in names
    img = cv2.resize(load_media("portrait_medium_skin_01.jpg"), (320, 213))
    res = Stylizer(cfg)(img, StylizeParams(character=folder.name))
    assert res.image.shape == img.shape


def test_character_lora_must_be_safetensors(stylizer, references, tmp_path):
    cfg = load_config(None, [f"data_dir={tmp_path}"])
    refs = references["noir"][:2]
    profile = fit_profile(refs, cfg)
    ch = character_from_profile("x", profile, load_character("classic", cfg))
    bad = tmp_path / "l.ckpt"
    bad.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ValueError, match="safetensors"):
        save_character(ch, profile, refs, cfg, lora=str(bad))
    assert not any((tmp_path / "characters").iterdir())  # nothing half-written left behind
