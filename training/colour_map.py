"""Fit a student's colour map: a quadratic function of the network's own output colour, added to it.

    python -m training.colour_map --student students/noir --pairs pairs/noir [--pairs-used 400]

Some characters apply a whole-image colour mapping (noir mutes saturated blues to steel and warms skin) that the
network under-learns: more pairs, longer runs, larger crops and a colour term in the loss did not find it
(docs/PERFORMANCE.md, "The person's outline"). Least squares finds it directly: on up to `pairs_used` training
pairs, the teacher's colour minus the network's is fitted as a linear function of the network's R, G, B, their
squares and products (studio.models.student_unet.colour_terms, 9 terms + a bias per channel). Pixels where the
teacher is much darker than the network (its ink, which the realtime step draws itself) are left out of the fit.
Each pair weighs by its own error, so the map serves the typical photo rather than the few furthest off (unweighted,
it lowered the mean PSNR of the very pairs it was fitted on). The map is kept only when it brings the held-out pairs
at least `min_gain` dB closer off the teacher's ink (where the realtime step shows the network's colour); the
network is never changed, and `report.json` records the scores under "colour_map".
training.distill runs this after training (its `--colour-map 1`, the default).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from studio.io import atomic_write

INK_MARGIN = 0.15  # a target pixel this much darker (grey, 0-1) than the network's is the teacher's ink
STRIDE = 4  # every 4th pixel of every 4th row: ~9k pixels per 384² pair
RIDGE = 1e-4


def without_map(model):
    """The same student's network with no colour map (a copy; `model` is unchanged)."""
    from studio.models.student_unet import StudentUNet

    core = StudentUNet(dataclasses.replace(model.config, colour_map=0)).eval()
    core.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("colour.")})
    return core


def fit(core, dataset, pairs_used: int = 400, seed: int = 0, tick=lambda: None) -> tuple[np.ndarray, np.ndarray, int]:
    """(weight (3, 9), bias (3,), pixels used): least squares of teacher - network on the network's colour terms,
    over up to `pairs_used` pairs of `dataset` (a seeded draw), ink left out, each pair weighed by 1 / its error."""
    import torch

    from studio.models.student_unet import COLOUR_TERMS

    from .fidelity import whole_pair

    m = core.config.multiple
    idx = list(range(len(dataset)))
    random.Random(seed).shuffle(idx)
    ata, atb = np.zeros((COLOUR_TERMS + 1,) * 2), np.zeros((COLOUR_TERMS + 1, 3))
    used = pairs = 0
    with torch.no_grad():
        for i in idx[:pairs_used]:
            tick()
            xt, y, ft = whole_pair(dataset, i, m)
            pred, terms = core.colour_fit_inputs(xt, ft)
            terms = terms[0, :, ::STRIDE, ::STRIDE].reshape(COLOUR_TERMS, -1).T.double().numpy()
            p = pred[0, :, ::STRIDE, ::STRIDE].reshape(3, -1).T.double().numpy()
            t = y[::STRIDE, ::STRIDE].reshape(-1, 3).astype(np.float64)
            keep = t.mean(axis=1) > p.mean(axis=1) - INK_MARGIN
            a, r = np.concatenate([terms[keep], np.ones((int(keep.sum()), 1))], axis=1), t[keep] - p[keep]
            if not len(a):
                continue
            # Each pair weighs by its own error: plain least squares would serve the pairs furthest off and cost the
            # rest more than it gives them (a mean PSNR lower than before, on the training pairs themselves).
            weight = 1.0 / (len(a) * max(float(np.mean(r * r)), 1e-6))
            ata += weight * (a.T @ a)
            atb += weight * (a.T @ r)
            pairs += 1
            used += len(a)
    if used < 10 * (COLOUR_TERMS + 1):
        raise ValueError(f"too few pixels to fit a colour map ({used})")
    sol = np.linalg.solve(ata + RIDGE * pairs * np.eye(COLOUR_TERMS + 1), atb)  # (10, 3)
    return sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32), used


def off_ink_psnr(core, mapped, dataset, tick=lambda: None) -> tuple[float, float]:
    """Mean PSNR (dB) of `core` and of `mapped` against the teacher over `dataset`'s whole pairs, counting only the
    pixels where the teacher draws no ink over the network's colour (the realtime step draws its own ink there)."""
    import torch

    from .fidelity import whole_pair

    scores = []
    with torch.no_grad():
        for i in range(len(dataset)):
            tick()
            xt, y, ft = whole_pair(dataset, i, core.config.multiple)
            a, b = (model(xt, ft)[0].permute(1, 2, 0).double().numpy() for model in (core, mapped))
            t = y.astype(np.float64)
            keep = t.mean(axis=2) > a.mean(axis=2) - INK_MARGIN
            scores.append([-10 * np.log10(max(float(np.mean((p[keep] - t[keep]) ** 2)), 1e-10)) for p in (a, b)])
    mean = np.mean(scores, axis=0)
    return float(mean[0]), float(mean[1])


def add_colour_map(student_dir: str | Path, pairs: str | Path, pairs_used: int = 400, min_gain: float = 0.05,
                   seed: int = 0, log=print, on_progress=None, should_stop=lambda: False) -> Optional[dict]:
    """Fit the map for the student in `student_dir` on `pairs` and keep it where the held-out pairs gain at least
    `min_gain` dB; the student (rewritten when it gains or loses a map) and its report are updated. Returns the record kept in
    report.json's "colour_map" (None, with nothing changed, when `should_stop()` turned true on the way).
    `on_progress(done, total)` counts the pairs gone through."""
    from studio.models.student_unet import StudentUNet

    from .datasets import pair_splits
    from .fidelity import evaluate

    student_dir = Path(student_dir)
    student = StudentUNet.from_pretrained(student_dir)
    if student.config.guided or student.config.refine:
        raise ValueError(f"{student_dir}: a colour map is for the plain head (this student has a guided head or a "
                         "refinement)")
    core = without_map(student)
    train_set, val_set, on = pair_splits(Path(pairs))
    total, done = min(pairs_used, len(train_set)) + len(val_set), [0]

    def tick():
        if should_stop():
            raise _Stopped
        if on_progress:
            on_progress(done[0], total)
        done[0] += 1

    try:
        weight, bias, used = fit(core, train_set, pairs_used, seed, tick)
        mapped = _with_map(core, weight, bias)
        without, with_map = off_ink_psnr(core, mapped, val_set, tick)
    except _Stopped:
        log("colour map: stopped, the student is unchanged")
        return None
    kept = with_map >= without + min_gain
    final = mapped if kept else core
    m = core.config.multiple
    scores = evaluate(final, val_set, "cpu", m)  # the report's usual scores (the teacher's ink counted)
    final.eval()  # evaluate() leaves its model in training mode
    record = {"kept": bool(kept), "pairs": str(pairs), "pairs_fitted": min(pairs_used, len(train_set)),
              "pixels": used, "val_on": on, "val_off_ink_psnr_without": without, "val_off_ink_psnr_with": with_map,
              "min_gain": min_gain}
    if kept or student.config.colour_map:  # a student without a map that gains none stays byte for byte
        final.save_pretrained(student_dir)
    report_path = student_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report.update(scores)
    report["colour_map"] = record
    atomic_write(report_path, json.dumps(report, indent=2))
    if on_progress:
        on_progress(total, total)
    log(f"colour map {'kept' if kept else 'not kept'}: held-out pairs off the ink {without:.2f} -> {with_map:.2f} dB, "
        f"fitted on {used} pixels")
    return record


class _Stopped(Exception):
    pass


def _with_map(core, weight: np.ndarray, bias: np.ndarray):
    """`core`'s network with this colour map."""
    import torch

    from studio.models.student_unet import StudentUNet

    mapped = StudentUNet(dataclasses.replace(core.config, colour_map=1)).eval()
    state = core.state_dict()
    state.update({"colour.weight": torch.from_numpy(weight)[:, :, None, None], "colour.bias": torch.from_numpy(bias)})
    mapped.load_state_dict(state)
    return mapped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", required=True, help="a student folder (config.json + model.safetensors)")
    ap.add_argument("--pairs", required=True, help="the make_pairs folder of this student's character")
    ap.add_argument("--pairs-used", type=int, default=400, help="training pairs the map is fitted on (1-100000)")
    ap.add_argument("--min-gain", type=float, default=0.05, help="dB the held-out pairs must gain to keep it (0-10)")
    a = ap.parse_args(argv)
    if not 1 <= a.pairs_used <= 100000 or not 0 <= a.min_gain <= 10:
        ap.error("--pairs-used must be 1-100000 and --min-gain 0-10")
    try:
        add_colour_map(a.student, a.pairs, a.pairs_used, a.min_gain)
    except (ValueError, OSError) as exc:  # incl. BadStudent and a missing folder: one line, nothing changed
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
