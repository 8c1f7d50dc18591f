"""Toonlab studio core: photo → webtoon. `import studio` stays light (no torch, mediapipe or gradio).

    from studio import Stylizer, StylizeParams, load_config
    result = Stylizer(load_config())(image, StylizeParams(character="classic"))
"""
from .config import StudioConfig, load_config
from .pipeline import Stylizer
from .types import StylizeParams, StylizeResult

__all__ = ["Stylizer", "StylizeParams", "StylizeResult", "StudioConfig", "load_config"]
