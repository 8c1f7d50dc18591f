"""The SD teacher on a tiny random SD + ControlNet pipeline built offline (no downloads)."""
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio import StylizeParams, Stylizer, load_config  # noqa: E402
from studio.stylize.lora import check_safetensors, parse_lora  # noqa: E402
from studio.stylize.sd_teacher import SDModelMissing, face_condition, lineart_condition  # noqa: E402
from studio.tiny_sd import write_tiny_sd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONTROLNETS = "sd.controlnets=[{kind: lineart, model: controlnet-lineart, scale: 0.8}, {kind: face, model: controlnet-face, scale: 0.5}]"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))


def sd_config(tiny_dir, *extra):
    return load_config(None, [f"sd.base={tiny_dir}", CONTROLNETS, "sd.steps=2", "sd.device=cpu",
                              *extra])


@pytest.fixture(scope="module")
def stylizer(tiny_dir):
    return Stylizer(sd_config(tiny_dir))


@pytest.fixture(scope="module")
def photo(load_media):
    img = load_media("portrait_dark_skin_02.png")
    return cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def loras(tiny_dir, tmp_path_factory):
    """Two LoRA files on the tiny UNet with random (non-zero) weights, in the diffusers/peft format."""
    out = tmp_path_factory.mktemp("loras")
    return [make_lora(tiny_dir, out / f"style{i}.safetensors", seed=100 + i) for i in range(2)]


def make_lora(base: Path, dest: Path, seed: int) -> str:
    """A LoRA file for the UNet of `base` with random (non-zero) weights, in the diffusers/peft format."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(base)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(seed)
    for name, p in pipe.unet.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0.0, 0.3)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(dest.parent, unet_lora_layers=layers, weight_name=dest.name)
    return str(dest)


def run(stylizer, photo, **kw):
    return stylizer(photo, StylizeParams(character="classic", teacher="sd", **kw))


def test_sd_stylize_end_to_end(stylizer, photo):
    res = run(stylizer, photo, seed=1)
    assert res.image.shape == photo.shape and res.teacher == "sd"
    assert {"stylize.init", "stylize.conditions", "stylize.diffusion"} <= set(res.timings)
    assert res.info["sd"]["steps"] == 2
    again = run(stylizer, photo, seed=1)
    other = run(stylizer, photo, seed=2)
    assert np.array_equal(res.image, again.image)  # seeded
    assert np.abs(res.image.astype(int) - other.image.astype(int)).mean() > 1


def test_strength_changes_how_far_from_the_init(stylizer, photo):
    weak = run(stylizer, photo, strength=0.1, seed=3).image.astype(int)
    strong = run(stylizer, photo, strength=0.9, seed=3).image.astype(int)
    assert np.abs(weak - strong).mean() > 1


@pytest.mark.parametrize("controlnets", ["sd.controlnets=[{kind: lineart, model: controlnet-lineart}]",
                                         "sd.controlnets=[]"])
def test_one_or_no_controlnet(tiny_dir, photo, controlnets):
    st = Stylizer(load_config(None, [f"sd.base={tiny_dir}", controlnets, "sd.steps=2",
                                     "sd.device=cpu", "sd.init=photo"]))
    assert run(st, photo).image.shape == photo.shape


def test_loras_load_change_and_stack(stylizer, photo, loras):
    base = run(stylizer, photo, seed=5).image.astype(int)
    one = run(stylizer, photo, seed=5, loras=((loras[0], 1.0),)).image.astype(int)
    two = run(stylizer, photo, seed=5, loras=((loras[0], 1.0), (loras[1], 1.0))).image.astype(int)
    zero = run(stylizer, photo, seed=5, loras=((loras[0], 0.0),)).image.astype(int)
    assert np.abs(one - base).mean() > 0.5
    assert np.abs(two - one).mean() > 0.5
    assert np.abs(zero - base).max() <= 2  # weight 0 is the base model
    back = run(stylizer, photo, seed=5).image.astype(int)  # and LoRAs are switched off again afterwards
    assert np.abs(back - base).max() <= 2


def test_non_safetensors_lora_is_refused_unread(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "style.ckpt"
    evil.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="only .safetensors"):
        check_safetensors(evil)
    fake = tmp_path / "style.safetensors"
    fake.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not a safetensors"):
        check_safetensors(fake)
    assert not marker.exists()


def test_parse_lora():
    assert parse_lora("a/b.safetensors:0.6") == ("a/b.safetensors", 0.6)
    assert parse_lora("b.safetensors") == ("b.safetensors", 1.0)
    assert parse_lora("C:/x/b.safetensors") == ("C:/x/b.safetensors", 1.0)


def test_conditions_follow_the_photo(stylizer, load_media):
    img = load_media("portrait_light_skin_asian_01.jpg")
    img = cv2.resize(img, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    p = stylizer.perceive(img)
    face = face_condition(img.shape, p.faces)
    box = p.faces[0].box
    x0, y0, x1, y1 = box.as_int()
    inside = (face[y0:y1, x0:x1].max(axis=2) > 0).mean()
    assert inside > 0.03 and (face.max(axis=2) > 0).mean() < 3 * inside * box.area / face[..., 0].size + 0.01
    lines = lineart_condition(img.astype(np.float32) / 255, p.faces)
    assert lines.dtype == np.uint8 and 0.01 < (lines[..., 0] > 127).mean() < 0.3


def test_missing_base_is_a_clear_error_and_classic_still_works(tiny_dir, photo, tmp_path):
    st = Stylizer(load_config(None, [f"sd.base={tmp_path / 'nowhere'}", "sd.device=cpu"]))
    with pytest.raises(SDModelMissing, match="nowhere"):
        st.prepare(StylizeParams(teacher="sd"))
    assert st(photo, StylizeParams(teacher="classic")).image.shape == photo.shape


def test_cli_missing_base_is_one_line(tmp_path, media_dir):
    r = subprocess.run([sys.executable, "-m", "studio", "stylize", str(media_dir / "images" / "lowres_240p_01.jpg"),
                        "--out", str(tmp_path), "--teacher", "sd", "--base", "owner/no-such-model"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                                    "HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "owner/no-such-model" in errors[0] and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.png"))


def test_sdxl_class_base_goes_through_the_same_path(tmp_path, photo):
    """An SDXL-layout folder is recognised from model_index.json and runs with its XL ControlNets."""
    xl = write_tiny_sd(tmp_path / "tiny_xl", family="sdxl")
    st = Stylizer(load_config(None, [f"sd.base={xl}", CONTROLNETS, "sd.steps=2",
                                     "sd.device=cpu"]))
    res = run(st, photo, seed=1)
    assert res.image.shape == photo.shape
    pipe = st.teacher("sd").pipeline(str(xl))
    assert type(pipe).__name__ == "StableDiffusionXLControlNetImg2ImgPipeline"


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_the_tiny_pipeline_keeps_the_geometry_of_stable_diffusion(tmp_path, family):
    """The smoke model downsamples 8x like every SD VAE (a 512 px image is a 64x64 latent), its ControlNets embed
    the condition image to the latent size, and its default size is SD 1.5's 512 px: the README's commands at
    their default resolutions then work on latents of a real model's size."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel

    folder = write_tiny_sd(tmp_path / family, family=family)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    controlnet = ControlNetModel.from_pretrained(folder / "controlnet-lineart")
    with torch.no_grad():
        assert vae.encode(torch.zeros(1, 3, 512, 512)).latent_dist.mode().shape == (1, 4, 64, 64)
        assert controlnet.controlnet_cond_embedding(torch.zeros(1, 3, 512, 512)).shape[-2:] == (64, 64)
    assert UNet2DConditionModel.load_config(folder, subfolder="unet")["sample_size"] * 8 == 512


def test_a_lora_of_another_base_model_is_a_one_line_error(tiny_dir, photo, tmp_path, monkeypatch):
    import studio.tiny_sd

    monkeypatch.setattr(studio.tiny_sd, "UNET_CHANNELS", (32, 64))  # another model: wider attention layers
    other = make_lora(write_tiny_sd(tmp_path / "other"), tmp_path / "other.safetensors", seed=7)
    monkeypatch.undo()
    st = Stylizer(sd_config(tiny_dir))
    with pytest.raises(ValueError, match="other.safetensors does not fit this base model") as err:
        run(st, photo, seed=1, loras=((other, 0.8),))
    assert "\n" not in str(err.value)
    assert run(st, photo, seed=1).image.shape == photo.shape  # the pipeline still works without it
