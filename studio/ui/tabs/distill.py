"""Distill tab: teacher → pairs → student → ONNX, then the fidelity and speed report with sample triplets.

Runs `training.jobs.start_distill_job` in the background (progress, cancel; a re-run continues: pairs
already made are skipped and training resumes from its checkpoint), then exports with `realtime.export`
(the float ONNX, and its int8 model calibrated on the pairs' photos) and times the student on both.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from realtime.engines import load_engine
from realtime.export import ParityError, calibration_photos, export_onnx, quantize_int8

from ...io import safe_name
from ...models import STUDENT_FACTORS
from ..api import Param, character_param, document, integer
from ..components import character_picker, slider
from . import cancel_job, follow, inputs_for, refuse, running_job, start_job

TITLE = "Distill"


@dataclass
class DistillUI:
    character: gr.Dropdown
    files: gr.File
    pairs: gr.Slider
    steps: gr.Slider
    start: gr.Button
    cancel: gr.Button
    clear: gr.Button
    status: gr.Markdown
    report: gr.Markdown
    samples: gr.Gallery


def render(ctx) -> DistillUI:
    with gr.Row():
        with gr.Column():
            character = character_picker(ctx, label="Character", elem_id="distill-character")
            files = gr.File(label="Photos to learn from (none: reuse the last upload for this character)",
                            file_count="multiple", file_types=["image"])
            pairs = slider(1, 20000, value=500, step=1, precision=0, label="Pairs (teacher images)")
            steps = slider(1, 100000, value=2000, step=1, precision=0, label="Training steps")
            with gr.Row():
                start = gr.Button("Generate, train, export", variant="primary")
                cancel = gr.Button("Cancel")
            clear = gr.Button("Clear this character's photos", size="sm")
            status = gr.Markdown(label="Status")
        with gr.Column():
            report = gr.Markdown(label="Report")
            samples = gr.Gallery(label="Samples", columns=3, height=420)
    return DistillUI(character, files, pairs, steps, start, cancel, clear, status, report, samples)


def _ms_per_frame(engine) -> float:
    x = np.random.default_rng(0).random((1, 3, 512, 512), dtype=np.float32)
    f = np.full((1, len(STUDENT_FACTORS)), 0.5, np.float32)
    engine(x, f)
    t0 = time.perf_counter()
    for _ in range(5):
        engine(x, f)
    return (time.perf_counter() - t0) / 5 * 1000


def _report_and_samples(student: Path, pairs: Path) -> tuple[str, list]:
    export = json.loads((export_onnx(student).parent / "export.json").read_text())
    engine = load_engine("onnxruntime", student)
    ms = _ms_per_frame(engine)
    # The fast CPU engine's model, calibrated on the photos the student learned from (the pairs' inputs)
    try:
        quantize_int8(student, calibration_photos(pairs, limit=48, pattern="*_in.png"))
        int8 = json.loads((student / "int8.json").read_text())
        fast = _ms_per_frame(load_engine("onnxruntime-int8", student))
        int8_line = (f"; int8 (onnxruntime-int8, the default on a CPU): {fast:.1f} ms, PSNR ≥ "
                     f"{int8['parity_psnr_min']:.1f} dB against the float student on {len(int8['parity_photos'])} "
                     "held-out photos")
    except (ValueError, ParityError) as exc:
        int8_line = f"; no int8 model: {exc}"
    rep = json.loads((student / "report.json").read_text()) if (student / "report.json").is_file() else {}
    lines = [f"**Fidelity** (student vs teacher, {rep.get('pairs', 'held-out')} pairs, n={rep.get('n', 0)}): "
             f"PSNR {rep.get('psnr', float('nan')):.2f} dB · SSIM {rep.get('ssim', float('nan')):.4f} "
             f"(the photo itself: {rep.get('identity_psnr', float('nan')):.2f} dB · "
             f"{rep.get('identity_ssim', float('nan')):.4f})",
             f"**Speed**: {ms:.1f} ms per 512² frame with onnxruntime on {engine.device} ({1000 / ms:.0f} fps)"
             f"{int8_line}; ONNX parity max |diff| {export['parity_max_abs_diff']:.1e}", "",
             "| factor setting | PSNR | SSIM | n |",
             "|---|---|---|---|"]
    for k, v in rep.get("by_factor", {}).items():
        lines.append(f"| {k.replace('_', ' ')} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['n']} |")
    from training.datasets import PairDataset

    held_out = PairDataset(pairs, "val")
    data, seen = (held_out, held_out.held_out_by) if len(held_out) else (PairDataset(pairs, "train"), "none")
    lines += ["", {"source photo": "**Samples**: photos the student never trained on.",
                   "pair": f"**Samples**: pairs held out of training, from photos it did train on (with "
                           f"{PairDataset.MIN_SOURCES} or more photos, whole photos are held out).",
                   "none": "**Samples**: training pairs (too few pairs to hold any out)."}[seen]]
    gallery = []
    for i in range(min(3, len(data))):
        photo, teacher, factors = data[i]
        student_out = engine(photo.transpose(2, 0, 1)[None].copy(), factors[None])[0].transpose(1, 2, 0)
        gallery += [(photo, "photo"), (teacher, "teacher"), (np.clip(student_out, 0, 1), "student")]
    return "\n".join(lines), gallery


def listen(ctx, ui: DistillUI) -> None:
    from training.jobs import clear_images, start_distill_job

    def run(character, files=None, pairs=500, steps=2000, request: gr.Request = None, progress=gr.Progress()):
        job = start_job(ctx, request, "distill", lambda: start_distill_job(
            ctx.cfg, character=character, images=list(files or []), pairs=pairs, steps=steps))  # checked there
        yield from shown(job, character, progress)

    def shown(job, character, progress):
        for line, s in follow(job, progress):
            yield line, gr.skip(), gr.skip()
        if s.status == "done":
            student = Path(s.result)
            pairs_dir = ctx.cfg.resolve(ctx.cfg.data_dir) / "pairs" / safe_name(character)
            text, gallery = _report_and_samples(student, pairs_dir)
            yield f"**done** · {s.message}", text, gallery

    def reopened(request: gr.Request = None, progress=gr.Progress()):
        """A page (re)loaded while this browser's distill job runs: its progress, then its report."""
        job = running_job(ctx, request, "distill")
        if job is None:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        yield from shown(job, job.subject, progress)

    ctx.on_load.append((reopened, [ui.status, ui.report, ui.samples]))

    ui.start.click(run, inputs_for(run, ui), [ui.status, ui.report, ui.samples], api_name="distill",
                   show_progress_on=ui.status)

    document(ctx, "/distill", character=character_param(ctx.cfg.default_character),
             files=Param("list[filepath]", "photos to learn from; left out: the ones uploaded for this "
                         "character before", None),
             pairs=integer("teacher images to make (1 to 20000; pairs already made are kept)", 500),
             steps=integer("training steps (1 to 100000; a re-run resumes from the checkpoint)", 2000))
    document(ctx, "/clear_distill_photos", character=character_param(ctx.cfg.default_character))

    def cancel(request: gr.Request = None):
        return cancel_job(ctx, request, "distill", "Stopping; pairs made and the training checkpoint are kept.")

    ui.cancel.click(cancel, None, ui.status, api_name="cancel_distill")

    def clear_photos(character):
        if ctx.jobs.running("distill"):
            raise refuse("A distill job is running; clear the photos when it ends.")
        n = clear_images(ctx.cfg, "distill", character)
        return f"Removed {n} photo(s) of {character}." if n else f"No photos were kept for {character}."

    ui.clear.click(clear_photos, inputs_for(clear_photos, ui), ui.status, api_name="clear_distill_photos")
