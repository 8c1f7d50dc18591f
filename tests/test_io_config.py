"""Safe image loading, config loading with overrides, characters, and name sanitising."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.characters import list_characters, load_character
from studio.config import ConfigError, load_config
from studio.io import ImageLoadError, atomic_path, atomic_write, being_written, load_image, safe_name, save_image

REPO = Path(__file__).resolve().parents[1]


def test_edge_case_photos_load_as_rgb(media_dir):
    for name in ["portrait_rgba_microphone_01.png", "portrait_grayscale_1ch_01.jpg", "lowres_240p_01.jpg",
                 "portrait_dark_skin_02.png"]:
        img = load_image(media_dir / "images" / name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif)
    assert load_image(p).shape[:2] == (40, 20)


def test_sixteen_bit_and_transparency(tmp_path):
    p16 = tmp_path / "g16.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(p16)
    img = load_image(p16)
    assert img.shape == (64, 64, 3) and img.max() > 200
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black → white
    pa = tmp_path / "t.png"
    Image.fromarray(rgba).save(pa)
    assert load_image(pa).min() == 255


@pytest.mark.parametrize("content,expect", [(b"", "empty"), (b"hello, not an image", "not an image"),
                                            (None, "corrupt")])
def test_bad_inputs_give_one_line_errors(tmp_path, media_dir, content, expect):
    p = tmp_path / "bad.jpg"
    if content is None:  # a real JPEG cut in half
        data = (media_dir / "images" / "group_6faces_01.jpg").read_bytes()
        content = data[: len(data) // 2]
    p.write_bytes(content)
    with pytest.raises(ImageLoadError) as exc:
        load_image(p)
    assert expect in str(exc.value) and "\n" not in str(exc.value)


def test_pixel_limit_checked_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    Image.new("L", (8000, 6500)).save(p)  # 52 MP
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(p, max_pixels=40_000_000)


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    out = save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "a" / "x.png")
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["x.png"]


def test_atomic_path_replaces_only_when_the_write_finishes(tmp_path):
    target = atomic_write(tmp_path / "a" / "state.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert being_written(target) and target.read_text() == "old"
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and not being_written(target)  # the old file whole, no temporary left
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    folder = tmp_path / "checkpoint"  # a folder takes the place of the previous one whole
    for step in (1, 2):
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / "state.json").write_text(str(step))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in folder.iterdir()] == ["state.json"] and (folder / "state.json").read_text() == "2"


def test_safe_name():
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("Ana María 01") == "Ana_Mar_a_01"
    with pytest.raises(ValueError):
        safe_name("../")


def test_config_overrides_and_unknown_keys(tmp_path):
    cfg = load_config(None, ["perception.max_faces=4", "server.port=7999"])
    assert cfg.perception.max_faces == 4 and cfg.server.port == 7999
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["perception.max_face=4"])
    with pytest.raises(ConfigError, match="expected int"):
        load_config(None, ["server.port=abc"])


def test_builtin_characters_differ():
    cfg = load_config()
    chars = {c.name: c for c in list_characters(cfg)}
    assert {"classic", "pastel", "noir"} <= set(chars)
    weights = {c.line_weight for c in chars.values()}
    eyes = {c.geometry.eye_scale for c in chars.values()}
    palettes = {c.palette for c in chars.values()}
    assert len(weights) >= 3 and len(eyes) >= 3 and len(palettes) >= 3
    with pytest.raises(ValueError, match="choices"):
        load_character("nobody", cfg)


def test_import_studio_stays_light():
    code = ("import sys, studio, studio.perception, studio.stylize; "
            "heavy = [m for m in ('torch', 'diffusers', 'gradio', 'mediapipe', 'tensorrt') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
