"""The student: a light U-Net that maps a photo to the teacher's webtoon image, with live factor inputs.

    model = StudentUNet(StudentConfig())
    y = model(x, factors)            # x: (B, 3, H, W) in [0, 1]; factors: (B, 4) = line, texture, color, warp
    model.save_pretrained(DIR)       # DIR/config.json + DIR/model.safetensors
    model = StudentUNet.from_pretrained(DIR)

Speed comes from a reduced internal resolution: the image is pixel-unshuffled by `down` (4: a 512² frame is
processed as 128² with 48 channels), run through a small U-Net whose features are modulated by the factors
(FiLM: a per-channel scale and shift from a tiny MLP), and pixel-shuffled back; the network predicts a
residual over the input. Every op is a conv, ReLU, add, mul or (un)shuffle, so the ONNX export is plain and
H and W can be dynamic (multiples of `down * 4`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

N_FACTORS = 4  # line, texture, color, warp


@dataclass(frozen=True)
class StudentConfig:
    down: int = 4  # pixel-unshuffle factor
    width: int = 24  # channels at the first level (24: ~25 ms per 512² frame with onnxruntime on 2 cores)
    depth: int = 2  # U-Net levels below the first
    factors: int = N_FACTORS

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this."""
        return self.down * (2 ** self.depth)


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


class StudentUNet(nn.Module):
    def __init__(self, config: StudentConfig = StudentConfig()):
        super().__init__()
        self.config = config
        c, d, k = config.width, config.depth, config.factors
        self.unshuffle = nn.PixelUnshuffle(config.down)
        self.shuffle = nn.PixelShuffle(config.down)
        cin = 3 * config.down ** 2
        widths = [c * (2 ** i) for i in range(d + 1)]
        self.inp = FiLMBlock(cin, widths[0], k)
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1) for i in range(d))
        self.enc = nn.ModuleList(FiLMBlock(widths[i + 1], widths[i + 1], k) for i in range(d))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(d)))
        self.dec = nn.ModuleList(FiLMBlock(2 * widths[i], widths[i], k) for i in reversed(range(d)))
        self.out = nn.Conv2d(widths[0], cin, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        h = self.inp(self.unshuffle(x), factors)
        skips = []
        for down, enc in zip(self.downs, self.enc):
            skips.append(h)
            h = enc(down(h), factors)
        for up, dec, skip in zip(self.ups, self.dec, reversed(skips)):
            h = dec(torch.cat([up(h), skip], dim=1), factors)
        return torch.clamp(x + self.shuffle(self.out(h)), 0.0, 1.0)

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".tmp-model.safetensors"
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        tmp.replace(folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps(asdict(self.config), indent=2))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, map_location: str = "cpu") -> "StudentUNet":
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(f"{folder}: not a student folder (needs config.json and model.safetensors)")
        config = StudentConfig(**json.loads((folder / "config.json").read_text()))
        model = cls(config)
        model.load_state_dict(load_file(str(folder / "model.safetensors"), device=map_location))
        return model.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
