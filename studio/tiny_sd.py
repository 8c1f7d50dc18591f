"""Write a tiny, randomly initialised Stable Diffusion (SD 1.5 or SDXL layout) + ControlNet pipeline folder.

    python -m studio.tiny_sd DIR [--seed 0] [--family sd15|sdxl]

DIR gets the diffusers folder layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/,
scheduler/) and `controlnet-lineart/`, `controlnet-face/` beside them, so it loads through exactly the
code path a real model takes (`--base DIR`). Its outputs are noise-like: it exists to test and smoke-test
the SD teacher and LoRA training without downloads (the components follow diffusers' own tests). The
tokenizer is built in memory from a byte-level vocabulary, no hub files needed.

It keeps Stable Diffusion's geometry with a few channels: the VAE downsamples 8x (four blocks) and the
ControlNets' condition embedding too, so a 512 px image is a 64x64 latent, as in SD 1.5, and the same commands
at the same default resolutions run in seconds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

CONTROLNET_KINDS = ("lineart", "face")
VAE_CHANNELS = (8, 16, 16, 16)  # four blocks: three 2x downsamplings, SD's 8x
CONDITION_CHANNELS = (8, 8, 16, 16)  # the ControlNet's condition embedding: 8x down to the latent, as in SD's
SAMPLE_SIZE = 64  # latent side for the pipelines' default size: 64 x 8 = 512 px, SD 1.5's
UNET_CHANNELS = (16, 32)  # SD's block layout (a plain block, then cross-attention blocks), a few channels each
# SD 1.x: cross-attention on the text encoder's 32 channels. attention_head_dim is diffusers' legacy name for the
# number of heads: 2 heads of 16 channels. With 8 heads of 4, the attention at 32x32 latents took three quarters of
# a training step on a CPU.
SD15_EXTRA = dict(cross_attention_dim=32, attention_head_dim=2)


def _byte_vocab() -> dict[str, int]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in map(chr, cs):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    return vocab


def _unet(**extra):
    """The tiny UNet: SD's layout with UNET_CHANNELS; `extra` says which family's conditioning it takes."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=UNET_CHANNELS, layers_per_block=2, sample_size=SAMPLE_SIZE, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8, **extra)


def tiny_components(seed: int = 0) -> dict:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = _unet(**SD15_EXTRA)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(block_out_channels=VAE_CHANNELS, in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * len(VAE_CHANNELS),
                        up_block_types=("UpDecoderBlock2D",) * len(VAE_CHANNELS), latent_channels=4,
                        norm_num_groups=8, sample_size=SAMPLE_SIZE * 8)
    torch.manual_seed(seed + 2)
    vocab = _byte_vocab()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=32))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)


# SDXL: two text encoders (hidden 32 + 32 = cross-attention 64) and the "text_time" added conditioning
# (6 time ids x 8 + the pooled projection 32 = 80), as in diffusers' own SDXL tests.
XL_EXTRA = dict(attention_head_dim=(1, 2), use_linear_projection=True, addition_embed_type="text_time",
                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                projection_class_embeddings_input_dim=80, cross_attention_dim=64)


def tiny_xl_components(seed: int = 0) -> dict:
    import torch
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTextModelWithProjection

    parts = tiny_components(seed)
    torch.manual_seed(seed)
    parts["unet"] = _unet(**XL_EXTRA)
    torch.manual_seed(seed + 3)
    parts["text_encoder_2"] = CLIPTextModelWithProjection(parts["text_encoder"].config)
    parts["tokenizer_2"] = parts["tokenizer"]
    parts["scheduler"] = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                steps_offset=1, timestep_spacing="leading")
    for key in ("safety_checker", "feature_extractor", "requires_safety_checker"):
        parts.pop(key)
    return parts


def tiny_controlnet(seed: int = 0, xl: bool = False):
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    extra = XL_EXTRA if xl else SD15_EXTRA
    return ControlNetModel(block_out_channels=UNET_CHANNELS, layers_per_block=2, in_channels=4,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                           conditioning_embedding_out_channels=CONDITION_CHANNELS, norm_num_groups=8, **extra)


def write_tiny_sd(out: Path, seed: int = 0, family: str = "sd15") -> Path:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if family == "sdxl":
        StableDiffusionXLPipeline(**tiny_xl_components(seed)).save_pretrained(out, safe_serialization=True)
    else:
        StableDiffusionPipeline(**tiny_components(seed)).save_pretrained(out, safe_serialization=True)
    for i, kind in enumerate(CONTROLNET_KINDS):
        tiny_controlnet(seed + 10 + i, xl=family == "sdxl").save_pretrained(out / f"controlnet-{kind}",
                                                                            safe_serialization=True)
    (out / "TINY_RANDOM.json").write_text(json.dumps({"what": f"tiny random {family} pipeline for tests",
                                                      "seed": seed, "controlnets": list(CONTROLNET_KINDS)}))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", choices=["sd15", "sdxl"], default="sd15")
    args = ap.parse_args(argv)
    print(write_tiny_sd(Path(args.out), args.seed, args.family))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
