"""LoRA and model files: only `.safetensors` is read (pickle formats can run code when loaded), and the
command line's `FILE[:WEIGHT]` form. No torch or diffusers here: the studio checks a file before anything
heavy is loaded.

    path = check_safetensors("me.safetensors")      # ValueError for anything else, SDModelMissing if absent
    parse_lora("me.safetensors:0.7")                # ("me.safetensors", 0.7)
"""
from __future__ import annotations

import os
import struct
from pathlib import Path


class SDModelMissing(RuntimeError):
    """A base model, ControlNet or LoRA is not available; the message names it and how to get it."""


MAX_HEADER = 100 << 20  # bytes of a safetensors file's JSON header (the safetensors library's own bound)


def check_safetensors(path: os.PathLike | str) -> Path:
    """Refuse anything that is not a readable .safetensors file (never unpickle user files)."""
    p = Path(path)
    if not p.is_file():
        raise SDModelMissing(f"{p}: no such file")
    if p.suffix.lower() != ".safetensors":
        raise ValueError(f"{p.name}: only .safetensors files are accepted (pickle formats such as .ckpt, .bin, "
                         ".pt are refused: they can run code when loaded)")
    with open(p, "rb") as fh:
        head = fh.read(9)
    size = p.stat().st_size
    if len(head) < 9:
        raise ValueError(f"{p.name}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", head[:8])
    if n <= 0 or n > size - 8 or n > MAX_HEADER or head[8:9] != b"{":
        raise ValueError(f"{p.name}: not a safetensors file (bad header)")
    return p


def parse_lora(spec: str) -> tuple[str, float]:
    """'FILE[:WEIGHT]' → (FILE, WEIGHT); the weight defaults to 1.0."""
    path, sep, weight = spec.rpartition(":")
    if sep and path and not weight.startswith(("/", "\\")):
        try:
            return path, float(weight)
        except ValueError:
            pass
    return spec, 1.0
