"""LoRA tab: train a LoRA for a user (their photos) or a character (its references), with progress and loss,
cancel and resume. Runs `training.jobs` in the background; needs a Stable Diffusion base model.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...checks import LORA_RANK, LORA_RESOLUTION, LORA_STEPS
from ...stylize.sd_teacher import missing_here, offered_base
from ...stylize.sd_teacher import studio_bases as base_choices
from ..api import Param, document, integer
from ..components import slider
from . import cancel_job, follow, inputs_for, refuse, running_job, start_job

TITLE = "LoRA"


@dataclass
class LoraUI:
    kind: gr.Radio
    name: gr.Textbox
    files: gr.File
    base: gr.Dropdown
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
            base = gr.Dropdown(base_choices(ctx.cfg), value=ctx.cfg.sd.base, label="Base model",
                               allow_custom_value=True,  # checked by the handler: one message for any name
                               info="The configured model and those in the data folder's models/")
            steps = slider(1, 3000, value=400, step=1, precision=0, label="Steps")
            rank = gr.Dropdown([4, 8, 16, 32], value=8, label="Rank")
            resolution = gr.Dropdown([512, 768, 1024], value=512, label="Resolution", allow_custom_value=True)
            resume = gr.Checkbox(False, label="Resume from the last checkpoint")
            with gr.Row():
                train = gr.Button("Train", variant="primary")
                cancel = gr.Button("Cancel")
            status = gr.Markdown(label="Status")
    return LoraUI(kind, name, files, base, steps, rank, resolution, resume, train, cancel, status)


def listen(ctx, ui: LoraUI) -> None:
    from training.jobs import start_lora_job

    def train(kind, name, files=None, base=None, steps=400, rank=8, resolution=512, resume=False,
              request: gr.Request = None, progress=gr.Progress()):
        if not (name or "").strip():
            raise refuse("Give a name.")
        try:  # the numbers first (studio.checks, as start_lora_job and the CLI check them), then the model
            steps, rank = LORA_STEPS.check("steps", steps), LORA_RANK.check("rank", rank)
            resolution = LORA_RESOLUTION.check("resolution", resolution)
            base = offered_base(ctx.cfg, (base or "").strip() or ctx.cfg.sd.base)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        missing = missing_here(ctx.cfg, base)  # said at once: the pages never wait on the network for a model
        if missing:
            raise refuse(missing)
        job = start_job(ctx, request, "lora", lambda: start_lora_job(
            ctx.cfg, kind=kind, name=name, images=list(files or []), steps=steps, rank=rank, base=base,
            resume=bool(resume), resolution=resolution))  # numbers checked there
        for line, _ in follow(job, progress):
            yield line

    def reopened(request: gr.Request = None, progress=gr.Progress()):
        """A page (re)loaded while this browser's LoRA training runs: its progress."""
        job = running_job(ctx, request, "lora")
        if job is None:
            yield gr.skip()
            return
        for line, _ in follow(job, progress):
            yield line

    ctx.on_load.append((reopened, [ui.status]))

    ui.train.click(train, inputs_for(train, ui), ui.status, api_name="train_lora")
    document(ctx, "/train_lora",
             kind=Param("str", "user: a person's photos (faces are found and aligned); character: a character's "
                        "reference images", "user"),
             name=Param("str", "the user's or character's name (letters, digits, _ and -)"),
             files=Param("list[filepath]", "images (tens); left out: the ones uploaded for this name before",
                         None),
             steps=integer("training steps, 1 to 3000", 400), rank=integer("LoRA rank: 4, 8, 16 or 32", 8),
             resolution=integer("training resolution: 512, 768 or 1024 (a multiple of 64)", 512))
    ui.base.focus(lambda: gr.update(choices=base_choices(ctx.cfg)), None, ui.base, api_name=False)

    def cancel(request: gr.Request = None):
        return cancel_job(ctx, request, "lora", "Stopping after the current step; the checkpoint is kept (tick Resume "
                                                "to continue).")

    ui.cancel.click(cancel, None, ui.status, api_name="cancel_lora")
