"""The student: a light U-Net that maps a (face-warped) photo to the teacher's webtoon image, with live factor
inputs.

    model = StudentUNet(StudentConfig())
    y = model(x, factors)            # x: (B, 3, H, W) in [0, 1]; factors: (B, 3) = line, texture, color
    model.save_pretrained(DIR)       # DIR/config.json + DIR/model.safetensors
    model = StudentUNet.from_pretrained(DIR)

Speed comes from a reduced internal resolution: the image is pixel-unshuffled by `down` (4: a 512² frame is
processed as 128² with 48 channels) and run through a small U-Net whose features are modulated by the factors
(FiLM: a per-channel scale and shift from a tiny linear layer). Two choices make the teacher more learnable
(measured in docs/PERFORMANCE.md, "Student recipe"):
- the prediction is added to a smooth base (the photo's block means, upsampled), not to the photo: the cel
  look has no photo texture, and cancelling the photo's 4x4 detail through a narrow first level is what a
  photo-residual student spends its capacity on;
- a global context vector (the bottleneck's mean plus the factors) modulates the bottleneck: palette, exposure
  and line thresholds are whole-image decisions in the teacher.
An optional two-layer refinement at full resolution (`refine` > 0) sees the photo beside the upsampled
prediction, so edges can land on the photo's own edges instead of the 4x4 grid; it doubles the time per frame
on a CPU for a small gain, so the shipped students go without it.
An optional colour map (`colour_map: 1`, plain head only) adds to the prediction a quadratic function of its own
colour at 1/down (a 1x1 conv of R, G, B, their squares and products), upsampled with the base: a whole-image colour
mapping a character applies (noir mutes blues to steel) that the network under-learns. It is not trained by
gradient but fitted by least squares after training (training.colour_map), and kept only where it brings the
held-out pairs closer.
Every op is a conv, ReLU, add, mul, mean, average pool, resize or (un)shuffle, so the ONNX export is plain
and H and W can be dynamic (multiples of `down * 2**depth`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_path, atomic_write
from . import STUDENT_FACTORS, BadStudent


@dataclass(frozen=True)
class StudentConfig:
    down: int = 4  # pixel-unshuffle factor
    width: int = 24  # channels at the first level
    depth: int = 2  # U-Net levels below the first
    factors: int = len(STUDENT_FACTORS)
    refine: int = 0  # extra channels for a full-resolution refinement (0: none; 8 costs +20 ms per 512² frame)
    guided: int = 0  # > 0: a trainable guided filter of this radius (at 1/down) places the output (GuidedHead)
    gate: int = 0  # 1: with `guided`, a learned per-pixel gate between the filter and the plain upsampled prediction
    colour_map: int = 0  # 1: a fitted quadratic colour map of the output (colour_terms -> 1x1 conv, added)

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this."""
        return self.down * (2 ** self.depth)

    @classmethod
    def read(cls, folder: Path) -> "StudentConfig":
        """`<folder>/config.json`, checked: a BadStudent (one line) for anything a trained student cannot have (an
        unknown key, a wrong type, `down: 0`, another number of factors)."""
        path = Path(folder) / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadStudent(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(data, dict):
            raise BadStudent(f"{path}: a student's config is a JSON object")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise BadStudent(f"{path}: unknown key(s) {unknown}")
        limits = {"down": (1, 2, 4, 8), "width": range(4, 257), "depth": range(1, 6),
                  "factors": (len(STUDENT_FACTORS),), "refine": range(0, 65), "guided": range(0, 5),
                  "gate": (0, 1), "colour_map": (0, 1)}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int) or value not in limits[key]:
                allowed = limits[key]
                rule = (f"{allowed.start}-{allowed.stop - 1}" if isinstance(allowed, range)
                        else " or ".join(map(str, allowed)))
                raise BadStudent(f"{path}: {key} must be an integer, {rule}; got {value!r}")
        return cls(**data)


class FiLMBlock(nn.Module):
    """Two 3x3 convs with ReLU, the second modulated by (1 + gamma) and beta from the factors."""

    def __init__(self, cin: int, cout: int, factors: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.film = nn.Linear(factors, 2 * cout)
        self.act = nn.ReLU(inplace=True)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv1(x))
        gamma, beta = self.film(f).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return self.act(self.conv2(h) * (1 + gamma) + beta)


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """The mean over (2r+1)² windows, edge windows over the pixels they hold (an ONNX AveragePool)."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


class GuidedHead(nn.Module):
    """A trainable fast guided filter (Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018): the
    network's low-resolution prediction `p` is fitted, per (2r+1)² window, as a linear function A·g + b of a guide `g`
    that a small learned 1x1 network makes from the photo; A and b are smoothed, brought up to full resolution and
    applied to the full-resolution guide. Edges land where the photo's are, and flat regions stay flat where the
    fitted A is zero; the network itself only runs at 1/down. All of it is pooling, 1x1 convs, resize and arithmetic
    (exported as plain ONNX; the filter's arithmetic stays float in the int8 model, realtime.export)."""

    def __init__(self, radius: int, down: int, hidden: int = 8):
        super().__init__()
        self.radius, self.down = radius, down
        self.guide = nn.Sequential(nn.Conv2d(3, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
        self.log_eps = nn.Parameter(torch.tensor(math.log(1e-3)))

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r = self.radius
        g = self.guide(x)
        g_lr = F.avg_pool2d(g, self.down)
        mean_g, mean_p = box_mean(g_lr, r), box_mean(p, r)
        cov = box_mean(g_lr * p, r) - mean_g * mean_p
        var = box_mean(g_lr * g_lr, r) - mean_g * mean_g
        a = cov / (var + torch.exp(self.log_eps))
        b = mean_p - a * mean_g
        ab = F.interpolate(torch.cat([box_mean(a, r), box_mean(b, r)], dim=1), scale_factor=self.down,
                           mode="bilinear", align_corners=False)
        a_up, b_up = ab.chunk(2, dim=1)
        return a_up * g + b_up


COLOUR_TERMS = 9


def colour_terms(y: torch.Tensor) -> torch.Tensor:
    """R, G, B, their squares and their products (B, 9, H, W): what the colour map is a linear function of."""
    r, g, b = y[:, 0:1], y[:, 1:2], y[:, 2:3]
    return torch.cat([y, y * y, r * g, r * b, g * b], dim=1)


class ColourMap(nn.Conv2d):
    """y -> a linear function of colour_terms(y) (the student adds it to its prediction): its ops export under
    "/colour/", which the int8 quantisation leaves in float (realtime.export)."""

    def __init__(self):
        super().__init__(COLOUR_TERMS, 3, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return super().forward(colour_terms(y))


class StudentUNet(nn.Module):
    def __init__(self, config: StudentConfig = StudentConfig()):
        super().__init__()
        self.config = config
        c, d, k, r = config.width, config.depth, config.factors, config.refine
        self.unshuffle = nn.PixelUnshuffle(config.down)
        self.shuffle = nn.PixelShuffle(config.down)
        cin = 3 * config.down ** 2
        widths = [c * (2 ** i) for i in range(d + 1)]
        self.inp = FiLMBlock(cin, widths[0], k)
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1) for i in range(d))
        self.enc = nn.ModuleList(FiLMBlock(widths[i + 1], widths[i + 1], k) for i in range(d))
        bottom = widths[-1]
        self.context = nn.Sequential(nn.Linear(bottom + k, bottom), nn.ReLU(inplace=True), nn.Linear(bottom, 2 * bottom))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(d)))
        self.dec = nn.ModuleList(FiLMBlock(2 * widths[i], widths[i], k) for i in reversed(range(d)))
        if config.guided and r:
            raise ValueError("a student has a guided head or a refinement, not both")
        # The guided head takes a low-resolution prediction (3 channels at 1/down); the plain head a pixel shuffle.
        if config.gate and not config.guided:
            raise ValueError("a gate needs a guided head")
        self.out = nn.Conv2d(widths[0], 3 + config.gate if config.guided else (3 + r) * config.down ** 2, 3, padding=1)
        if config.guided:
            self.head = GuidedHead(config.guided, config.down)
        # zero-initialised last layers: training starts from the smooth base and learns what to add
        zero = [self.context[2], self.out]
        if r:
            self.refine1 = nn.Conv2d(3 + 3 + r, 16, 3, padding=1)
            self.refine2 = nn.Conv2d(16, 3, 3, padding=1)
            zero.append(self.refine2)
        if config.colour_map and (config.guided or r):
            raise ValueError("a colour map is for the plain head (no guided head, no refinement)")
        if config.colour_map:
            self.colour = ColourMap()  # zero: no change until fitted (training.colour_map)
            zero.append(self.colour)
        for layer in zero:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        down = self.config.down
        o = self.out(self.features(x, factors))
        if self.config.guided:
            # The prediction at 1/down is the photo's block means plus what the network adds; the head places it.
            p = F.avg_pool2d(x, down) + o[:, :3]
            y = self.head(x, p)
            if self.config.gate:
                # Where the teacher is flat the filter would carry the photo's texture (its A·guide): a gate learned at
                # 1/down blends toward the plain upsampled prediction there.
                up = F.interpolate(torch.cat([p, o[:, 3:]], dim=1), scale_factor=down, mode="bilinear",
                                   align_corners=False)
                y = up[:, :3] + torch.sigmoid(up[:, 3:]) * (y - up[:, :3])
        else:
            base = F.avg_pool2d(x, down)
            if self.config.colour_map:
                # The map's change, a function of the prediction's colour at 1/down, rides on the base's upsampling:
                # no pass at full resolution (a per-pixel map cost 5 ms per 512² frame in onnxruntime on 2 cores).
                base = base + self.colour(self.low_colour(base, o))
            y = F.interpolate(base, scale_factor=down, mode="bilinear", align_corners=False)
            o = self.shuffle(o)
            y = y + o[:, :3]
            if self.config.refine:
                y = y + self.refine2(torch.relu(self.refine1(torch.cat([x, y, o[:, 3:]], dim=1))))
        # No clamp while training: a clamped pixel has no gradient, and a pixel pushed past 0 or 1 would stay stuck
        return y if self.training else torch.clamp(y, 0.0, 1.0)

    def features(self, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """The U-Net's last features, at 1/down."""
        h = self.inp(self.unshuffle(x), factors)
        skips = []
        for conv, enc in zip(self.downs, self.enc):
            skips.append(h)
            h = enc(conv(h), factors)
        gamma, beta = self.context(torch.cat([h.mean(dim=(2, 3)), factors], dim=1)).unsqueeze(-1).unsqueeze(-1).chunk(2, 1)
        h = torch.relu(h * (1 + gamma) + beta)
        for up, dec, skip in zip(self.ups, self.dec, reversed(skips)):
            h = dec(torch.cat([up(h), skip], dim=1), factors)
        return h

    def for_export(self) -> "StudentUNet":
        """A copy computing the same function (to float rounding) with the ops an int8 CPU runtime runs fastest: the
        pixel unshuffle folded into the first convolution (3x3 over the unshuffled channels = a 3·down-wide
        convolution of stride `down` over the photo) and each 2x2 transposed convolution as a 1x1 convolution and a
        pixel shuffle. In onnxruntime's int8 model the unshuffle was a 6-D transpose of the whole frame and the
        transposed convolutions ran in float between layout changes (docs/PERFORMANCE.md, "The student's export")."""
        import copy

        m = copy.deepcopy(self).eval()
        r, conv = m.config.down, m.inp.conv1
        out, _, k, _ = conv.weight.shape
        first = nn.Conv2d(3, out, k * r, stride=r, padding=r * (k // 2))
        # unshuffled channel c·r² + dy·r + dx at tap (ky, kx) is the photo's channel c at (ky·r + dy, kx·r + dx)
        first.weight.data.copy_(conv.weight.detach().reshape(out, 3, r, r, k, k).permute(0, 1, 4, 2, 5, 3)
                                .reshape(out, 3, k * r, k * r))
        first.bias.data.copy_(conv.bias.detach())
        m.unshuffle, m.inp.conv1 = nn.Identity(), first
        for i, up in enumerate(m.ups):
            cin, cout, s, _ = up.weight.shape  # kernel = stride = s: each input pixel writes its own s x s block
            one = nn.Conv2d(cin, cout * s * s, 1)  # output channel o·s² + dy·s + dx: PixelShuffle's order
            one.weight.data.copy_(up.weight.detach().permute(1, 2, 3, 0).reshape(cout * s * s, cin, 1, 1))
            one.bias.data.copy_(up.bias.detach().repeat_interleave(s * s))
            m.ups[i] = nn.Sequential(one, nn.PixelShuffle(s))
        return m

    def low_colour(self, base: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """The plain head's prediction at 1/down: the photo's block means plus the mean of what the network adds to
        each block's pixels (the output's first 3·down² channels, which the pixel shuffle spreads over the block)."""
        n, _, h, w = o.shape
        return base + o[:, :3 * self.config.down ** 2].reshape(n, 3, self.config.down ** 2, h, w).mean(dim=2)

    def colour_fit_inputs(self, x: torch.Tensor, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For fitting the colour map (training.colour_map): the prediction without the map (unclamped) and the map's
        terms as they reach each full-resolution pixel (B, 9, H, W; the map's change there is a linear function of
        them, as the upsampling is linear)."""
        if self.config.guided or self.config.refine:
            raise ValueError("a colour map is for the plain head (no guided head, no refinement)")
        down = self.config.down
        o = self.out(self.features(x, factors))
        base = F.avg_pool2d(x, down)
        up = F.interpolate(torch.cat([base, colour_terms(self.low_colour(base, o))], dim=1), scale_factor=down,
                           mode="bilinear", align_corners=False)
        return up[:, :3] + self.shuffle(o)[:, :3], up[:, 3:]

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        atomic_write(folder / "config.json", json.dumps(asdict(self.config), indent=2))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, map_location: str = "cpu") -> "StudentUNet":
        from safetensors.torch import load_file

        from ..stylize.lora import check_safetensors

        folder = Path(folder)
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(f"{folder}: not a student folder (needs config.json and model.safetensors)")
        config = StudentConfig.read(folder)
        weights = folder / "model.safetensors"
        try:
            check_safetensors(weights)  # a pickle (or anything) named .safetensors is refused unread
            state = load_file(str(weights), device=map_location)
            model = cls(config)
            model.load_state_dict(state)
        except (ValueError, OSError, RuntimeError) as exc:  # incl. safetensors' errors and shape mismatches
            raise BadStudent(f"{weights}: not this student's weights ({' '.join(str(exc).split())[:200]})") from None
        return model.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
