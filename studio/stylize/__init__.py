"""Teachers: the registry of stylisation back-ends.

`TEACHERS` maps a name to a loader returning the teacher class, so listing names (for the UI's
dropdown) imports nothing heavy. `classic` needs no downloaded weights; `sd` needs a Stable Diffusion base
model (and imports torch and diffusers when first used).
"""
from __future__ import annotations

import importlib
from typing import Any

TEACHERS: dict[str, str] = {
    "classic": "studio.stylize.classic:ClassicTeacher",
    "sd": "studio.stylize.sd_teacher:SDTeacher",
}


def get_teacher(name: str, cfg) -> Any:
    """An instance of the named teacher for the studio config; an unknown name lists the choices."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choices: {sorted(TEACHERS)}")
    module, cls = TEACHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
