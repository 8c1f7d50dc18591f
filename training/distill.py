"""Distil a teacher into the light student from make_pairs data.

    python -m training.make_pairs --images ../shared/data/images --out pairs/classic --pairs 2000
    python -m training.distill --pairs pairs/classic --out students/classic --steps 20000 [--batch 8] [--crop 128]
        [--lr 1e-3] [--width 24] [--resume] [--val-every 500] [--init students/classic] [--guided 1 [--gate 1]]
        [--colour-map 1]

Loss: L1 + image-gradient + SSIM (training/losses.py; nothing downloaded). accelerate runs it (CUDA when
present); a checkpoint every `--val-every` steps keeps the student, optimiser and step, and `--resume`
continues from it. Validation on the held-out pairs (10 % of the source photos; by pair id when the pairs come
from fewer than 5 photos) reports PSNR and SSIM, also against the identity (photo vs teacher); the best
student is written to `<out>/` as `config.json` + `model.safetensors` (+ `distill_config.json`,
`report.json`, and the pairs' own `pairs_config.json`). After the last step the student's colour map is fitted on
the pairs and kept where it brings the held-out pairs closer (training.colour_map; `--colour-map 0` skips it).
`on_progress(step, total, info)` feeds the studio's progress bar (info["phase"] is "colour map" during the fit).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from studio.checks import GUIDED_RADIUS, SWITCH
from studio.io import atomic_path, atomic_write

from . import progress_bar
from .fidelity import evaluate


@dataclass(frozen=True)
class DistillConfig:
    pairs: str
    out: str
    steps: int = 20000
    batch: int = 8
    crop: int = 128
    lr: float = 1e-3
    width: int = 24
    depth: int = 2
    val_every: int = 500
    resume: bool = False
    seed: int = 0
    init: Optional[str] = None  # a student folder to start from (fine-tuning on a changed teacher), not from zero
    guided: int = 0  # > 0: the student places its output with a trainable guided filter of this radius (GuidedHead)
    gate: int = 0  # 1: with guided, a learned gate between the filter and the plain upsampled prediction
    colour_map: int = 1  # 1: fit the colour map after training (training.colour_map), kept where it helps


def lr_factor(step: int, total: int) -> float:
    """Linear warm-up over the first 5 % of the steps, then cosine decay to zero."""
    warm = max(1.0, 0.05 * total)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1.0, total - warm))))


def _batch(dataset, idx, crop: int, rng: random.Random):
    """Random crops (same window for photo and target) with horizontal flips, as float tensors in [0, 1]."""
    import torch

    xs, ys = [], []
    for i in idx:
        x, y = dataset.pair_u8(i)
        h, w = x.shape[:2]
        c = min(crop, h, w)
        top, left = rng.randrange(0, h - c + 1), rng.randrange(0, w - c + 1)
        x, y = x[top:top + c, left:left + c], y[top:top + c, left:left + c]
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        xs.append(x)
        ys.append(y)
    to = lambda a: torch.from_numpy(np.stack(a).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to(xs), to(ys), torch.from_numpy(np.stack([dataset.factors(i) for i in idx]))


def distill(cfg: DistillConfig, on_progress: Optional[Callable[[int, int, dict], None]] = None,
            log=print, should_stop: Callable[[], bool] = lambda: False) -> Path:
    import torch
    from accelerate import Accelerator
    from safetensors.torch import load_file, save_file

    from studio.models.student_unet import StudentConfig, StudentUNet

    from .colour_map import add_colour_map, without_map
    from .datasets import pair_splits
    from .losses import distill_loss

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_set, val_set, val_on = pair_splits(Path(cfg.pairs))
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    accelerator = Accelerator(mixed_precision="fp16" if torch.cuda.is_available() else "no")
    model = StudentUNet(StudentConfig(width=cfg.width, depth=cfg.depth, guided=cfg.guided, gate=cfg.gate))
    ck = out / "checkpoint"
    resuming = cfg.resume and (ck / "state.json").is_file()
    if cfg.init and not resuming:  # a resumed run has its own weights: the starting student is not read
        # checked: a pickle or a foreign file is refused. Its network is trained on; a colour map is fitted anew.
        start = without_map(StudentUNet.from_pretrained(cfg.init))
        if start.config != model.config:
            raise ValueError(f"--init {cfg.init} is a {start.config} student; this run trains {model.config}")
        model.load_state_dict(start.state_dict())
        log(f"starting from {cfg.init}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step, best = 0, -1.0
    if resuming:
        model.load_state_dict(load_file(str(ck / "model.safetensors")))
        opt.load_state_dict(torch.load(ck / "optimizer.pt", weights_only=True))
        state = json.loads((ck / "state.json").read_text())
        step, best = state["step"], state["best_psnr"]
        log(f"resumed at step {step}")
    model, opt = accelerator.prepare(model, opt)
    (out / "distill_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    made_by = Path(cfg.pairs) / "pairs_config.json"  # how the pairs were made, kept beside the student too
    if made_by.is_file():
        (out / "pairs_config.json").write_text(made_by.read_text())
    multiple = accelerator.unwrap_model(model).config.multiple
    crop = max(multiple, cfg.crop // multiple * multiple)
    t0, report = time.perf_counter(), {}
    while step < cfg.steps and not should_stop():
        x, y, f = (t.to(accelerator.device) for t in _batch(train_set, [rng.randrange(len(train_set))
                                                                          for _ in range(cfg.batch)], crop, rng))
        for group in opt.param_groups:  # from the step alone, so a resumed (or extended) run follows it too
            group["lr"] = cfg.lr * lr_factor(step, cfg.steps)
        loss = distill_loss(model(x, f), y)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        opt.step()
        step += 1
        info = {"loss": float(loss.detach()), "steps_per_s": step / max(1e-6, time.perf_counter() - t0)}
        last = step == cfg.steps
        if cfg.val_every and (step % cfg.val_every == 0 or last):
            unwrapped = accelerator.unwrap_model(model)
            report = {**evaluate(unwrapped, val_set, accelerator.device, multiple), "pairs": val_on}
            info.update({f"val_{k}": v for k, v in report.items() if k in ("psnr", "ssim")})
            score = report.get("psnr", -1.0) if report else float(step)
            if score >= best or not np.isfinite(best):
                best = score
                unwrapped.save_pretrained(out)
                atomic_write(out / "report.json", json.dumps({"step": step, **report}, indent=2))
            with atomic_path(ck) as tmp:  # a crash mid-write leaves the previous checkpoint whole
                tmp.mkdir()
                save_file({k: v.detach().cpu().contiguous() for k, v in unwrapped.state_dict().items()},
                          str(tmp / "model.safetensors"))
                torch.save(opt.state_dict(), tmp / "optimizer.pt")
                (tmp / "state.json").write_text(json.dumps({"step": step, "best_psnr": best}))
            log(f"step {step}: loss {info['loss']:.4f}" + (f", val PSNR {report['psnr']:.2f} dB, SSIM "
                                                          f"{report['ssim']:.4f}" if report else "")
                + f" ({info['steps_per_s']:.2f} steps/s on {accelerator.device})")
        if on_progress:
            on_progress(step, cfg.steps, info)
    if not (out / "model.safetensors").is_file():
        accelerator.unwrap_model(model).save_pretrained(out)
    if cfg.colour_map and not cfg.guided and step >= cfg.steps and not should_stop():  # the plain head's alone
        log("fitting the colour map")
        add_colour_map(out, cfg.pairs, log=log, should_stop=should_stop,
                       on_progress=on_progress and (lambda n, total: on_progress(n, total, {"phase": "colour map"})))
    return out


def parse_args(argv=None) -> DistillConfig:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", required=True, help="a make_pairs output folder")
    ap.add_argument("--out", required=True, help="student folder to write")
    for name, typ, default in (("steps", int, 20000), ("batch", int, 8), ("crop", int, 128), ("lr", float, 1e-3),
                               ("width", int, 24), ("depth", int, 2), ("val-every", int, 500), ("seed", int, 0)):
        ap.add_argument(f"--{name}", type=typ, default=default)
    ap.add_argument("--guided", type=GUIDED_RADIUS.arg("--guided"), default=0,
                    help="experimental: a trainable guided filter of this radius places the output (0: none)")
    ap.add_argument("--gate", type=SWITCH.arg("--gate"), default=0,
                    help="experimental, with --guided: 1 learns a gate between the filter and the plain output")
    ap.add_argument("--colour-map", type=SWITCH.arg("--colour-map"), default=1,
                    help="1 (default): fit the student's colour map after training, kept where it helps; 0: none")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", metavar="STUDENT", help="start from this student folder's weights (fine-tune it on these "
                    "pairs, e.g. after the teacher changed) instead of from zero; --resume takes precedence")
    a = ap.parse_args(argv)
    return DistillConfig(pairs=a.pairs, out=a.out, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, width=a.width,
                         depth=a.depth, val_every=a.val_every, resume=a.resume, seed=a.seed, init=a.init,
                         guided=a.guided, gate=a.gate, colour_map=a.colour_map)


def main(argv=None) -> int:
    from tqdm import tqdm

    cfg = parse_args(argv)
    bar, progress = progress_bar(cfg.steps, "distill")
    out = distill(cfg, progress, log=tqdm.write)
    bar.close()
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
