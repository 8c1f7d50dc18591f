"""The Stylizer facade: photo in, webtoon image out.

    from studio import Stylizer, StylizeParams
    result = Stylizer()(image_rgb_uint8, StylizeParams(character="pastel", line=0.7))
    result.image, result.faces, result.timings

The UI, the CLI and (later) the training jobs call this and little else.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, replace
from typing import Callable, Optional

import cv2
import numpy as np

from .characters import Character, load_character, resolve_factors
from .color import shrink
from .compose import LightSteadier
from .config import StudioConfig, load_config
from .perception import find_frame, pad_perception, perceive, scale_perception
from .perception.skin import skin_tone
from .stylize.cartoonizer import PaletteSteadier
from .stylize.classic import ClassicSettings
from .types import Perception, StylizeParams, StylizeResult

ProgressFn = Callable[[float, str], None]
MIN_SIDE = 16  # px: smaller images have no room for a face, a line or the student's blocks


def check_image(image: np.ndarray, max_pixels: int) -> None:
    """ValueError (one line) unless `image` is an RGB uint8 array between MIN_SIDE² and `max_pixels`: the rule of
    every path that stylises a photo (the teachers and the student)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("image must be an RGB uint8 array of shape (H, W, 3); load files with studio.io.load_image")
    h, w = image.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"image is too small ({w}x{h}); at least {MIN_SIDE}x{MIN_SIDE} pixels")
    if h * w > max_pixels:
        raise ValueError(f"image is {w}x{h} ({w * h / 1e6:.1f} MP), over the limit of {max_pixels / 1e6:.0f} MP")


class Stylizer:
    """`Stylizer(cfg)(image, params) -> StylizeResult`. Thread-safe; perception models load on first use."""

    def __init__(self, cfg: Optional[StudioConfig] = None):
        self.cfg = cfg or load_config()
        self._lock = threading.Lock()
        self._teachers: dict[str, object] = {}

    def character(self, name: str) -> Character:
        """The saved character `name`, read from disk on each call (a YAML file: under a millisecond), so a character
        saved or changed by another session is what the next call uses. An unsaved one (the Characters tab's
        preview) is never registered here: it is passed to the one call that uses it (`character=`)."""
        return load_character(name, self.cfg)

    def teacher(self, name: str):
        if name not in self._teachers:
            from .stylize import get_teacher
            self._teachers[name] = get_teacher(name, self.cfg)
        return self._teachers[name]

    def prepare(self, params: StylizeParams) -> None:
        """Load what `params` needs now (character, teacher, its models), so a missing one fails early."""
        params.validate()
        self.character(params.character)
        teacher = self.teacher(params.teacher)
        if hasattr(teacher, "prepare"):
            teacher.prepare(params)

    def perceive(self, image: np.ndarray) -> Perception:
        return perceive(image, self.cfg.perception)

    def resolve_factors(self, params: StylizeParams, character: Optional[Character] = None) -> dict[str, float]:
        """The factor values actually used: the params where given, else the character's defaults."""
        return resolve_factors(character or self.character(params.character), params.line, params.texture,
                               params.color, params.warp, params.background_line, params.background_texture,
                               params.background_color)

    def __call__(self, image: np.ndarray, params: Optional[StylizeParams] = None,
                 progress: Optional[ProgressFn] = None, character: Optional[Character] = None,
                 light: Optional[LightSteadier] = None, palette: Optional[PaletteSteadier] = None) -> StylizeResult:
        """`character`: an unsaved character used for this call only, in place of `params.character`. `light`,
        `palette`: a video's light and its layers' colour clusters carried from frame to frame (the classic teacher:
        studio.compose.normalize_light's `steady`, studio.stylize.cartoonizer.fit_palette's).
        A photo's own frame (a thin border of one colour all round it, studio.perception.find_frame) is kept flat
        round the photo stylised within it (`info["frame"]`)."""
        params = params or StylizeParams(character=self.cfg.default_character)
        report = progress or (lambda frac, msg: None)
        timings: dict[str, float] = {}
        # 1. Check inputs.
        check_image(image, self.cfg.max_input_pixels)
        h, w = image.shape[:2]
        frame = find_frame(image)
        if frame is not None:  # the photo's own border: kept flat round the stylised photo, not inked as a line
            res = self(np.ascontiguousarray(image[frame.inner(image.shape)]), params, progress, character, light,
                       palette)
            return replace(res, image=frame.around(res.image, image.shape),
                           perception=pad_perception(res.perception, frame.top, frame.left, (h, w)),
                           info={**res.info, "frame": asdict(frame)})
        params = params.checked()
        character = character or self.character(params.character)
        teacher = self.teacher(params.teacher)
        factors = self.resolve_factors(params, character)
        # 2. Work resolution: large photos are processed at process_max_side and resized back.
        t0 = time.perf_counter()
        work, f = shrink(image, self.cfg.process_max_side)
        timings["resize"] = time.perf_counter() - t0
        # 3. Perceive: faces, person, skin, hair (mediapipe models are not thread-safe: one call at a time).
        report(0.1, "finding faces and people")
        with self._lock:
            perception = self.perceive(work)
        timings.update({f"perceive.{k}": v for k, v in perception.timings.items()})
        # 4. Stylise with the teacher.
        report(0.4, f"stylising ({teacher.name})")
        settings = ClassicSettings.from_factors(factors, normalize_light=params.normalize_light, light=light,
                                             palette=palette)
        out01, perception, info = teacher.render(work.astype(np.float32) / 255.0, perception, character, settings,
                                                 params=params, tone_fn=skin_tone)
        timings.update({f"stylize.{k}": v for k, v in info.pop("timings", {}).items()})
        # 5. Back to the input size.
        report(0.95, "finishing")
        t0 = time.perf_counter()
        out = np.clip(out01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
            perception = scale_perception(perception, 1.0 / f, 1.0 / f, (h, w))
        timings["resize_back"] = time.perf_counter() - t0
        report(1.0, "done")
        return StylizeResult(image=out, perception=perception, params=params, factors=factors, timings=timings,
                             teacher=teacher.name, info=info)
