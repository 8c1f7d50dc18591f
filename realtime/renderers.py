"""What a realtime Stream draws frames with: a character's student on an engine (the realtime path) or the
studio's teacher (the quality path), behind one small Protocol.

    renderer = StudentFrames(cfg, engine="auto", default="classic")
    image, faces, person = renderer.render(frame_rgb_uint8, faces, "classic")
"""
from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from studio import StylizeParams, Stylizer
from studio.perception import segment_person

from .student import StudentStylizer, student_origin
from .temporal import CutDetector

# How far each frame's own light decision moves the one a clip carries (an exponential average over about 1 / LIGHT_RATE
# frames): a face coming and going, or a bright coat crossing the frame, eases the light over a few frames instead of
# switching it at once (the pedestrians clip's teacher flicker; docs/PERFORMANCE.md, "A clip's light").
LIGHT_RATE = 0.15
# The same for the colour clusters of each of the teacher's layers (studio.stylize.cartoonizer.fit_palette): fitted
# afresh on each frame they followed the people crossing it, and the wall behind them changed its flat colour with
# them (the pedestrians clip's teacher flicker 5.40 -> 4.76, docs/PERFORMANCE.md, "A clip's palette").
PALETTE_RATE = 0.15


class SteadyClip:
    """A clip's light and palette, carried from frame to frame. Called as studio.compose.normalize_light's `steady`,
    the exposure gain, backlight gamma and colour-cast shift each frame's own decision moves by LIGHT_RATE of the way;
    `palette` (studio.stylize.cartoonizer.fit_palette's `steady`) starts each layer's clustering from the centres
    carried and moves them by PALETTE_RATE toward where it settles. The first frame, and the first after a cut (the
    frame unlike the last by realtime.temporal's content measure), start from their own. Frames in order, one clip."""

    def __init__(self, rate: float = LIGHT_RATE, palette_rate: float = PALETTE_RATE):
        self.rate = float(rate)
        self.palette_rate = float(palette_rate)
        self.reset()

    def reset(self) -> None:
        self._carried: Optional[np.ndarray] = None
        self._centres: dict[str, np.ndarray] = {}
        self._cut = CutDetector()

    def see(self, frame: np.ndarray) -> None:
        """The next frame, before it is stylised: a cut forgets the light and the palette carried."""
        if self._cut(frame):
            self._carried = None
            self._centres.clear()

    def palette(self, key: str, cluster: Callable[[Optional[np.ndarray]], np.ndarray]) -> np.ndarray:
        """The layer `key`'s colour centres for this frame: clustered from the ones carried (or afresh), carried."""
        carried = self._centres.get(key)
        own = cluster(carried)
        if carried is not None and carried.shape == own.shape:
            own = (carried + self.palette_rate * (own - carried)).astype(np.float32)
        self._centres[key] = own
        return own

    def __call__(self, gain: float, gamma: float, shift: np.ndarray) -> tuple[float, float, np.ndarray]:
        own = np.array([gain, gamma, *np.asarray(shift, np.float64)], np.float64)
        self._carried = own if self._carried is None else self._carried + self.rate * (own - self._carried)
        c = self._carried
        return float(c[0]), float(c[1]), c[2:].astype(np.float32)


class FrameRenderer(Protocol):
    """What a Stream draws with (StudentFrames, TeacherFrames). `engine` (or None) and `teacher` (or None) name
    it in reports; `finds_faces` says that `render` finds the faces itself (the perceive stage then skips). A
    renderer that carries something from frame to frame (TeacherFrames: the light and palette) has `reset()`, called
    by the stream's."""

    engine: object
    teacher: Optional[str]
    finds_faces: bool

    def prepare(self, characters: Sequence[str]) -> None:
        """Load what these characters need now, so a missing one fails before the first frame."""

    def set_factors(self, factors: dict) -> None:
        """New line/texture/color/warp values (None: the character's default), from the next frame on."""

    def render(self, frame: np.ndarray, faces: Optional[list], character: str
               ) -> tuple[np.ndarray, list, Optional[np.ndarray]]:
        """The frame drawn as `character`; the faces (those given, or found); its person mask when known."""

    def person(self, frame: np.ndarray, faces: list) -> np.ndarray:
        """The soft person mask (H, W), when `render` did not give it."""

    def origins(self) -> dict[str, str]:
        """Which model draws each character loaded so far, in words for reports ({} for the teacher)."""


class StudentFrames:
    """The realtime path: each needed character's student on one engine; faces come from the stream."""

    finds_faces = False
    teacher = None

    def __init__(self, cfg, engine: str = "auto", student: Optional[str] = None,
                 factors: Optional[dict] = None, default: Optional[str] = None, device: str = "auto",
                 contours: bool = True):
        self.cfg, self.engine_name, self.device, self.contours = cfg, engine, device, contours
        self.factors = dict(factors or {})
        default = default or cfg.default_character
        self._students = {default: StudentStylizer(cfg, default, engine, student, device=device, contours=contours,
                                                   **self.factors)}
        self.engine = self._students[default].engine

    def student(self, character: str):
        if character not in self._students:  # another character: its own student from students/<name>/
            self._students[character] = StudentStylizer(self.cfg, character, self.engine_name, None,
                                                        device=self.device, contours=self.contours, **self.factors)
        return self._students[character]

    def prepare(self, characters: Sequence[str]) -> None:
        for c in characters:
            self.student(c)

    def set_factors(self, factors: dict) -> None:
        self.factors = dict(factors)
        for s in list(self._students.values()):
            s.set_factors(**self.factors)

    def render(self, frame: np.ndarray, faces, character: str):
        return self.student(character)(frame, faces), faces, None

    def person(self, frame: np.ndarray, faces) -> np.ndarray:
        return segment_person(frame, faces)

    def origins(self) -> dict[str, str]:
        return {name: student_origin(self.cfg, s.folder) for name, s in self._students.items()}


class TeacherFrames:
    """The quality path: the studio's Stylizer on each frame (it finds faces and people itself), each character's
    light and palette carried across the clip (SteadyClip)."""

    finds_faces = True
    engine = None

    def __init__(self, cfg, teacher: str = "classic", factors: Optional[dict] = None, default: Optional[str] = None):
        self.stylizer = Stylizer(cfg)
        self.teacher = teacher
        self.factors = dict(factors or {})
        self._clips: dict[str, SteadyClip] = {}
        self.prepare([default or cfg.default_character])

    def _params(self, character: str):
        return StylizeParams(character=character, teacher=self.teacher, **self.factors)

    def prepare(self, characters: Sequence[str]) -> None:
        for c in characters:
            self.stylizer.prepare(self._params(c))

    def set_factors(self, factors: dict) -> None:
        self.factors = dict(factors)

    def reset(self) -> None:
        """A new clip: no light or palette carried."""
        self._clips.clear()

    def render(self, frame: np.ndarray, faces, character: str):
        clip = self._clips.setdefault(character, SteadyClip())
        clip.see(frame)
        result = self.stylizer(frame, self._params(character), light=clip, palette=clip.palette)
        return result.image, result.faces, result.perception.person

    def person(self, frame: np.ndarray, faces) -> np.ndarray:  # not called: `render` gives the teacher's mask
        return segment_person(frame, faces)

    def origins(self) -> dict[str, str]:
        return {}
