"""Characters and LoRA tabs, driven through gradio_client against a real server (tiny SD pipeline)."""
import socket

import pytest

pytest.importorskip("gradio")
pytest.importorskip("diffusers")
from gradio_client import Client, handle_file  # noqa: E402

from studio.config import REPO_ROOT as REPO  # noqa: E402
from studio.config import load_config  # noqa: E402
from studio.ui import build_app  # noqa: E402

REFS = ["portrait_light_skin_asian_01.jpg", "portrait_medium_skin_01.jpg", "portrait_dark_skin_01.jpg"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from studio.tiny_sd import write_tiny_sd

    tiny = write_tiny_sd(tmp_path_factory.mktemp("tiny"))
    data = tmp_path_factory.mktemp("data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(None, [f"data_dir={data}", f"sd.base={tiny}", "sd.controlnets=[]", "sd.device=cpu"])
    demo = build_app(cfg)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), data, tiny
    demo.close()


def test_fit_preview_and_save_a_character(app, media_dir):
    client, data, _ = app
    files = [handle_file(str(media_dir / "images" / n)) for n in REFS]
    swatches, profile = client.predict(files=files, name="Hana", base="pastel", api_name="/fit_character")
    assert swatches.count("background:#") >= 16 + 5 and "3 references" in profile
    preview = client.predict(sample=handle_file(str(media_dir / "images" / "lowres_240p_01.jpg")),
                             api_name="/preview_character")
    assert preview
    status = client.predict(name="Hana", api_name="/save_character")
    status = status[0] if isinstance(status, (list, tuple)) else status
    assert "Saved" in status and (data / "characters" / "Hana" / "character.yaml").is_file()
    # Usable at once by another session, through the API, in the Stylize and Distill tabs (no restart).
    other = Client(client.src, verbose=False)
    photo = handle_file(str(media_dir / "images" / "lowres_240p_01.jpg"))
    _, download, report = other.predict(image=photo, character="Hana", api_name="/stylize")
    assert "character Hana" in report
    with pytest.raises(Exception, match="unknown character 'Nobody'"):
        other.predict(image=photo, character="Nobody", api_name="/stylize")


def test_train_a_user_lora_in_the_background(app, media_dir):
    client, data, _ = app
    files = [handle_file(str(media_dir / "images" / n)) for n in REFS]
    status = client.predict(kind="user", name="ana", files=files, steps=3, rank=4, resolution=512, resume=False,
                            api_name="/train_lora")
    assert "done" in status, status
    assert (data / "loras" / "user" / "ana" / "lora.safetensors").is_file()
    assert len(list((data / "datasets" / "user" / "ana").iterdir())) == 3


def test_stylize_with_sd_and_a_lora_from_the_data_folder(app, media_dir):
    """The Stylize tab passes a LoRA picked from the data folder through to the SD teacher."""
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from PIL import Image

    client, data, tiny = app
    pipe = StableDiffusionPipeline.from_pretrained(tiny)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(7)
    for name, p in pipe.unet.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0.0, 0.3)
    out = data / "loras" / "character" / "strong"
    StableDiffusionPipeline.save_lora_weights(out, weight_name="lora.safetensors", unet_lora_layers=
                                              convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)))
    photo = handle_file(str(media_dir / "images" / "lowres_240p_01.jpg"))
    common = dict(image=photo, teacher="sd", steps=2, seed=3, api_name="/stylize")
    _, plain, _ = client.predict(**common)
    _, with_lora, _ = client.predict(loras=[str(out / "lora.safetensors")], lora_weight=1.0, **common)
    a = np.asarray(Image.open(plain).convert("RGB")).astype(int)
    b = np.asarray(Image.open(with_lora).convert("RGB")).astype(int)
    assert a.shape == b.shape == (240, 427, 3)
    assert np.abs(a - b).mean() > 0.5
    with pytest.raises(Exception, match="Unknown LoRA"):
        client.predict(loras=["/etc/passwd"], **common)


def test_character_lora_is_attached_to_the_saved_character(app, media_dir):
    """Training a character LoRA under a saved character's name makes it that character's own LoRA."""
    import yaml

    from studio.characters import load_character

    client, data, _ = app
    preset = yaml.safe_load((REPO / "configs" / "characters" / "pastel.yaml").read_text())
    preset.update(name="Kai", display_name="Kai")  # a saved character of its own (no other test's leftovers)
    (data / "characters" / "Kai").mkdir(parents=True)
    (data / "characters" / "Kai" / "character.yaml").write_text(yaml.safe_dump(preset))
    files = [handle_file(str(media_dir / "images" / n)) for n in REFS]
    status = client.predict(kind="character", name="Kai", files=files, steps=2, rank=4, resolution=512,
                            resume=False, api_name="/train_lora")
    assert "attached" in status, status
    assert yaml.safe_load((data / "characters" / "Kai" / "character.yaml").read_text())["lora"] == "lora.safetensors"
    cfg = load_config(None, [f"data_dir={data}"])
    assert load_character("Kai", cfg).lora_path() == data / "characters" / "Kai" / "lora.safetensors"


def test_distill_tab_makes_a_student_and_reports(app, media_dir):
    client, data, _ = app
    files = [handle_file(str(media_dir / "images" / n)) for n in REFS]
    status, report, gallery = client.predict(character="classic", files=files, pairs=6, steps=4,
                                             api_name="/distill")
    assert "done" in status, status
    assert "PSNR" in report and "fps" in report and "| line " in report  # the per-factor table
    assert len(gallery) % 3 == 0 and len(gallery) >= 3
    student = data / "students" / "classic"
    assert (student / "model.safetensors").is_file() and (student / "student.onnx").is_file()
    assert (student / "student.int8.onnx").is_file() and "onnxruntime-int8" in report  # the fast CPU engine
