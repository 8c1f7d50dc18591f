"""One set of rules for every number a user gives, shared by the studio's endpoints and the command lines, so a
value refused by one is refused by all, with the same one-line reason.

    from studio.checks import FACTOR, LORA_RESOLUTION
    FACTOR.check("line", "0.4")         # 0.4
    FACTOR.check("line", float("nan"))  # ValueError: line must be a number in [0, 1], got nan
    LORA_RESOLUTION.check("resolution", "13")   # ValueError: ... a multiple of 64 in [256, 1024], got '13'
    ap.add_argument("--steps", type=LORA_STEPS.arg("--steps"))   # the same rule as an argparse type

Values arrive as numbers or strings (the API passes what a client sends, skipping the sliders' own limits);
booleans, NaN, infinities, fractions where an integer is due and anything out of range are refused.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, Optional, Union

Number = Union[int, float]


@dataclass(frozen=True)
class Rule:
    lo: float
    hi: float
    integer: bool = False
    lo_open: bool = False  # (lo, hi] rather than [lo, hi]
    multiple: int = 1  # integers only: a multiple of this
    choices: tuple = ()  # integers only: one of these

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        span = f"{'(' if self.lo_open else '['}{_fmt(self.lo)}, {_fmt(self.hi)}]"
        if self.integer:
            return (f"a multiple of {self.multiple} in {span}" if self.multiple > 1 else f"an integer in {span}")
        return f"a number in {span}"

    def check(self, name: str, value: Any, optional: bool = False) -> Optional[Number]:
        """`value` as a float (an int for integer rules), or ValueError naming `name` and the rule. None (or an empty
        string) is returned as None when `optional`, refused otherwise."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if optional:
                return None
            raise ValueError(f"{name} is required: {self.describe()}")
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        bad = ValueError(f"{name} must be {self.describe()}, got {shown}")
        if isinstance(value, bool):
            raise bad
        try:
            v = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):
            raise bad from None
        if not math.isfinite(v) or v > self.hi or v < self.lo or (self.lo_open and v == self.lo):
            raise bad
        if self.integer:
            if v != int(v) or int(v) % self.multiple or (self.choices and int(v) not in self.choices):
                raise bad
            return int(v)
        return v

    def arg(self, flag: str):
        """An argparse `type=` with this rule (argparse prints `argument FLAG: must be ..., got ...`)."""
        def parse(text: str) -> Number:
            try:
                return self.check(flag, text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}") from None
        parse.__name__ = flag.lstrip("-").replace("-", "_")
        return parse


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


FACTOR = Rule(0.0, 1.0)  # line, texture, color, warp and the background ones
SEED = Rule(0, 2 ** 32 - 1, integer=True)
SD_STRENGTH = Rule(0.0, 1.0, lo_open=True)
SD_STEPS = Rule(1, 200, integer=True)
SD_GUIDANCE = Rule(0.0, 30.0)
LORA_WEIGHT = Rule(-2.0, 2.0)  # a LoRA's scale when stacked (1: as trained)
LORA_STEPS = Rule(1, 20000, integer=True)
LORA_RANK = Rule(1, 128, integer=True, choices=(4, 8, 16, 32, 64, 128))
LORA_RESOLUTION = Rule(256, 1024, integer=True, multiple=64)  # SD's latents are 1/8, its UNet halves 3 times more
LEARNING_RATE = Rule(0.0, 1.0, lo_open=True)
BATCH_SIZE = Rule(1, 64, integer=True)
CHECKPOINT_EVERY = Rule(1, 100000, integer=True)
PAIRS = Rule(1, 20000, integer=True)
PAIR_SIZE = Rule(32, 1024, integer=True, multiple=16)  # the student takes multiples of 16
DISTILL_STEPS = Rule(1, 200000, integer=True)
FRAMES = Rule(0, 10_000_000, integer=True)  # the Video tab's limit; 0: the whole video
FRAME_LIMIT = Rule(1, 10_000_000, integer=True)  # the CLI's --frames (absent: the whole video)
MAX_SIDE = Rule(64, 8192, integer=True)
DETECT_EVERY = Rule(1, 1000, integer=True)
WORKERS = Rule(1, 64, integer=True)
GUIDED_RADIUS = Rule(0, 4, integer=True)  # a student's guided head (0: none), as StudentConfig allows
SWITCH = Rule(0, 1, integer=True)  # an on/off option given as 0 or 1
