"""LoRA training on the tiny random pipeline: loss goes down, files round-trip, resume, kohya keys, metadata."""
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from studio import load_config  # noqa: E402
from studio.jobs import Cancelled  # noqa: E402
from training.train_lora import (TrainLoraConfig, diffusion_loss, encode_prompts, load_training_images,  # noqa: E402
                                 to_pixels, train)

PHOTOS = ["portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg", "portrait_medium_skin_01.jpg",
          "bg_mountains_02.jpg"]

PERCEPTION = load_config().perception


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from studio.tiny_sd import write_tiny_sd
    return write_tiny_sd(tmp_path_factory.mktemp("tiny_sd_train"))


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory, media_dir):
    d = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(media_dir / "images" / name, d / name)
    (d / "portrait_dark_skin_01.txt").write_text("smiling, curly hair")
    return d


def config(tiny_dir, images_dir, out, **kw):
    base = dict(base=str(tiny_dir), images=str(images_dir), output=str(out), steps=5, rank=4, lr=1e-2,
                batch_size=2, checkpoint_every=0)
    return TrainLoraConfig(**{**base, **kw})


def fixed_batch_loss(pipe, cfg):
    from diffusers import DDPMScheduler
    images, captions, _ = load_training_images(cfg, cfg.images, log=lambda m: None, perception=PERCEPTION)
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return float(np.mean([float(diffusion_loss(pipe, sched, to_pixels(images), encode_prompts(pipe, captions), g))
                              for _ in range(6)]))


@pytest.fixture(scope="module")
def trained(tiny_dir, images_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora_user")
    steps = []
    path = train(config(tiny_dir, images_dir, out), on_progress=lambda s, t, i: steps.append((s, t, i["loss"])),
                 log=lambda m: None, perception=PERCEPTION)
    return path, steps


def test_user_images_are_face_crops(tiny_dir, images_dir, tmp_path):
    cfg = config(tiny_dir, images_dir, tmp_path)
    logs = []
    images, captions, digest = load_training_images(cfg, cfg.images, log=logs.append, perception=PERCEPTION)
    assert len(images) == 3 and all(i.shape == (512, 512, 3) for i in images)  # the landscape has no face
    assert any("no face" in m for m in logs)
    assert any("curly hair" in c for c in captions) and all("sks person" in c for c in captions)
    assert len(digest) == 64


def test_training_lowers_the_loss_and_reloads(trained, tiny_dir, images_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    path, steps = trained
    assert [s for s, _, _ in steps] == [1, 2, 3, 4, 5] and all(np.isfinite(l) for _, _, l in steps)
    cfg = config(tiny_dir, images_dir, tmp_path)
    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir)
    before = fixed_batch_loss(pipe, cfg)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name)
    after = fixed_batch_loss(pipe, cfg)
    assert after < before - 0.002, (before, after)


def test_trained_lora_changes_the_sd_teacher_output(trained, tiny_dir, load_media):
    import cv2

    from studio import StylizeParams, Stylizer, load_config

    path, _ = trained
    st = Stylizer(load_config(None, [f"sd.base={tiny_dir}", "sd.controlnets=[]", "sd.steps=2",
                                     "sd.device=cpu", "sd.init=photo"]))
    img = cv2.resize(load_media("portrait_dark_skin_02.png"), (96, 96))
    base = st(img, StylizeParams(teacher="sd", seed=1)).image.astype(int)
    with_lora = st(img, StylizeParams(teacher="sd", seed=1, loras=((str(path), 1.0),))).image.astype(int)
    assert np.abs(base - with_lora).mean() > 0.5


def test_files_metadata_and_kohya_keys(trained):
    from safetensors import safe_open

    path, _ = trained
    out = path.parent
    with safe_open(str(path), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("unet.") and ".lora." in k for k in keys)
    assert meta["ss_network_dim"] == "4" and meta["ss_steps"] == "5" and len(meta["toonlab_images_sha256"]) == 64
    assert Path(meta["ss_sd_model_name"]).name.startswith("tiny_sd")
    with safe_open(str(out / "lora_kohya.safetensors"), "pt") as f:
        kk = list(f.keys())
    assert any(k.startswith("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight")
               for k in kk)
    assert any(k.endswith("to_out_0.lora_up.weight") for k in kk) and any(k.endswith(".alpha") for k in kk)
    assert len([k for k in kk if k.endswith(".alpha")]) * 2 == len(keys)
    assert (out / "train_config.json").is_file()


def test_cancel_then_resume_continues_the_step_count(tiny_dir, images_dir, tmp_path):
    seen = []
    cfg = config(tiny_dir, images_dir, tmp_path, steps=5, checkpoint_every=2)
    with pytest.raises(Cancelled):
        train(cfg, on_progress=lambda s, t, i: seen.append(s), should_stop=lambda: len(seen) >= 3, log=lambda m: None,
              perception=PERCEPTION)
    assert seen == [1, 2, 3] and (tmp_path / "checkpoint-3").is_dir() and not (tmp_path / "lora.safetensors").exists()
    logs, resumed = [], []
    path = train(TrainLoraConfig(**{**cfg.__dict__, "resume": True}), on_progress=lambda s, t, i: resumed.append(s),
                 log=logs.append, perception=PERCEPTION)
    assert resumed == [4, 5] and any("resumed at step 3" in m for m in logs) and path.is_file()


def test_missing_base_is_clear(images_dir, tmp_path):
    from studio.stylize.sd_teacher import SDModelMissing

    with pytest.raises(SDModelMissing, match="nowhere"):
        train(TrainLoraConfig(base=str(tmp_path / "nowhere"), images=str(images_dir), output=str(tmp_path / "o"),
                              steps=1), log=lambda m: None, perception=PERCEPTION)
