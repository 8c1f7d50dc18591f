"""LoRA tab: train a LoRA for a user (their photos) or a character (its references), with progress and loss,
cancel and resume. Runs `training.jobs` in the background; needs a Stable Diffusion base model.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from . import cancel_job, ensure_idle, follow, inputs_for

TITLE = "LoRA"


@dataclass
class LoraUI:
    kind: gr.Radio
    name: gr.Textbox
    files: gr.File
    base: gr.Textbox
    steps: gr.Slider
    rank: gr.Dropdown
    resolution: gr.Dropdown
    resume: gr.Checkbox
    train: gr.Button
    cancel: gr.Button
    status: gr.Markdown


def render(ctx) -> LoraUI:
    with gr.Row():
        with gr.Column():
            kind = gr.Radio([("A user (their photos: faces are found and aligned)", "user"),
                             ("A character (its reference images)", "character")], value="user", label="For")
            name = gr.Textbox(label="Name", placeholder="e.g. ana, or a character's name")
            files = gr.File(label="Images (tens; none to reuse the ones uploaded before)", file_count="multiple",
                            file_types=["image"])
        with gr.Column():
            base = gr.Textbox(value=ctx.cfg.sd.base, label="Base model",
                              info="hub id (in the local cache), diffusers folder or .safetensors file")
            steps = gr.Slider(1, 3000, value=400, step=1, label="Steps")
            rank = gr.Dropdown([4, 8, 16, 32], value=8, label="Rank")
            resolution = gr.Dropdown([512, 768, 1024], value=512, label="Resolution", allow_custom_value=True)
            resume = gr.Checkbox(False, label="Resume from the last checkpoint")
            with gr.Row():
                train = gr.Button("Train", variant="primary")
                cancel = gr.Button("Cancel")
            status = gr.Markdown()
    return LoraUI(kind, name, files, base, steps, rank, resolution, resume, train, cancel, status)


def listen(ctx, ui: LoraUI) -> None:
    from training.jobs import start_lora_job

    def train(kind, name, files, base, steps, rank, resolution, resume, progress=gr.Progress()):
        if not (name or "").strip():
            raise gr.Error("Give a name.")
        ensure_idle(ctx, "lora")
        try:
            job = start_lora_job(ctx.cfg, kind=kind, name=name, images=list(files or []), steps=int(steps),
                                 rank=int(rank), base=(base or "").strip() or None, resume=bool(resume),
                                 resolution=int(resolution))
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        ctx.jobs["lora"] = job
        for line, _ in follow(job, progress):
            yield line

    ui.train.click(train, inputs_for(train, ui), ui.status, api_name="train_lora")

    ui.cancel.click(lambda: cancel_job(ctx, "lora", "Stopping after the current step; the checkpoint is kept "
                                                     "(tick Resume to continue)."), None, ui.status, api_name=False)
