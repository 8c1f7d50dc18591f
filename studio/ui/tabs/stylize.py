"""Stylize tab: upload a photo, pick a character and a teacher, tune line/texture/color/warp (and the
background), compare before/after, download the PNG.

The controls are kept in a name → component mapping keyed by StylizeParams field names; the handler's
parameters carry the same names, which are also the parameter names the API (gradio_client) shows:

    Client(url).predict(image=handle_file("photo.jpg"), character="noir", line=0.8, api_name="/stylize")

The photo reaches the handler as the uploaded file (not as gradio's decoded array) so that
`studio.io.load_image` applies the pixel limit before decoding, the EXIF orientation, and flattens
transparency onto white, exactly as the CLI does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from ...booth import SHOTS
from ...characters import list_characters, resolve_factors
from ...color import shrink
from ...io import ImageLoadError, load_image, safe_name, save_image
from ...stylize import TEACHERS
from ...stylize.sd_teacher import missing_here, offered_base
from ...stylize.sd_teacher import studio_bases as base_choices
from ...types import BACKGROUND_FACTORS as BACKGROUND
from ...types import FACTORS, StylizeParams
from ..api import Param, character_param, document, factor, integer
from ..booth import BoothUI, booth_options, make_page, render_booth
from ..components import character_picker, number, photo_upload, slider
from . import inputs_for, known_character, output_name, refuse, unusable_upload

TITLE = "Stylize"
SD_ONLY = ("strength", "steps", "guidance", "seed")  # StylizeParams fields only the sd teacher reads
BOOTH_SIDE = 1280  # each booth photo is stylised at most this long: a panel is at most 1024 px wide
PREVIEW_MAX_SIDE = 2048  # the before/after view is downscaled past this; the PNG download is full size
HELP = {
    "line": "Ink lines: none → many, thick",
    "texture": "Detail: photo → flat cel regions",
    "color": "Colour: photo → the character's palette",
    "warp": "Face shape: as photographed → the character's geometry",
}
TEACHER_HELP = {
    "classic": "Fast, on the CPU, no downloads",
    "sd": "Stable Diffusion: needs a base model (sd.base); slow without a GPU",
}


@dataclass
class StylizeUI:
    image: gr.Image
    character: gr.Dropdown
    teacher: gr.Dropdown
    controls: dict  # StylizeParams field name -> component
    background_default: gr.Checkbox
    sd_options: gr.Accordion
    button: gr.Button
    compare: gr.ImageSlider
    download: gr.DownloadButton
    report: gr.Markdown
    booth_photos: gr.File
    booth: BoothUI


def render(ctx) -> StylizeUI:
    cfg = ctx.cfg
    chars = list_characters(cfg)
    default = next((c for c in chars if c.name == cfg.default_character), chars[0])
    controls: dict = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            # image_mode=None: gradio passes the file through untouched (no RGB conversion of its own).
            image = photo_upload(label="Photo", image_mode=None, sources=["upload", "clipboard"],
                             height=260, elem_id="photo")
            # The button sits under the photo so that it stays in view while the sliders below are tuned.
            button = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
            with gr.Row():
                character = character_picker(ctx, default.name, label="Character", info=default.description,
                                             scale=2, elem_id="character")
                sd_ready, sd_reason = _sd_status(cfg)
                teacher_help = {**TEACHER_HELP, "sd": TEACHER_HELP["sd"] if sd_ready else sd_reason}
                teacher = gr.Dropdown(label="Teacher", scale=1, elem_id="teacher", value="classic",
                                      choices=[(n if n != "sd" or sd_ready else "sd (unavailable)", n) for n in TEACHERS],
                                      info=teacher_help.get("classic"))
            for name in FACTORS:
                controls[name] = slider(0, 1, value=getattr(default.defaults, name), step=0.01,
                                           label=name.capitalize(), info=HELP[name])
            controls["normalize_light"] = gr.Checkbox(value=True, label="Normalise lighting",
                                                      info="Lift dim and backlit photos, remove coloured light")
            with gr.Accordion("Background", open=False):
                background_default = gr.Checkbox(value=True,
                                                 label="Use the character's defaults for the background",
                                                 info="The person's settings, simplified: fewer lines, flatter.")
                for name, value in _background_defaults(default).items():
                    short = name.split("_", 1)[1]
                    controls[name] = slider(0, 1, value=value, step=0.01, label=f"Background {short}",
                                               interactive=False)
            with gr.Accordion("Stable Diffusion", open=True, visible=False) as sd_options:
                controls["strength"] = slider(0.05, 1, value=cfg.sd.strength, step=0.01, label="Strength",
                                                 info="How far diffusion may move from the classic result")
                controls["steps"] = slider(1, 60, value=cfg.sd.steps, step=1, label="Steps")
                controls["guidance"] = slider(1, 15, value=cfg.sd.guidance, step=0.5, label="Guidance")
                controls["seed"] = number(value=0, precision=0, minimum=0, label="Seed")
                controls["base"] = gr.Dropdown(base_choices(cfg), value=cfg.sd.base, label="Base model",
                                               allow_custom_value=True,  # checked by the handler
                                               info="The configured model and those in the data folder's models/")
                controls["loras"] = gr.Dropdown(choices=_lora_choices(cfg), multiselect=True, label="LoRAs",
                                                allow_custom_value=True,  # trained after the page loaded
                                                info="Stacked in the order picked, after the character's own LoRA")
                controls["lora_weight"] = slider(0, 1.5, value=0.8, step=0.05, label="LoRA weight")
        with gr.Column(scale=3):
            compare = gr.ImageSlider(label="Before / after", type="numpy", max_height=640, interactive=False,
                                     elem_id="before-after")
            with gr.Row():
                report = gr.Markdown("Upload a photo and press **Stylize**.", label="Report", elem_id="stylize-report")
                download = gr.DownloadButton("Download PNG", interactive=False, scale=0, min_width=180,
                                             elem_id="download")
    with gr.Accordion("Four-cut photo booth (네 컷 사진) from four photos", open=False, elem_id="stylize-booth"):
        booth_photos = gr.File(label="Four photos, in panel order", file_count="multiple", file_types=["image"],
                               elem_id="stylize-booth-photos")
        booth = render_booth("stylize", "Stylize the four and make the page")
    # Other tabs update these (the Characters tab adds a saved character to the picker).
    ctx.components.update({"stylize.character": character, "stylize.teacher": teacher, "stylize.image": image})
    return StylizeUI(image, character, teacher, controls, background_default, sd_options, button, compare, download,
                     report, booth_photos, booth)


def _sd_status(cfg) -> tuple[bool, str]:
    """Whether the configured SD base model is on this machine (folder, file or hub cache; no network)."""
    reason = missing_here(cfg, cfg.sd.base)
    return reason is None, f"Unavailable: {reason}" if reason else ""


def _lora_choices(cfg) -> list[tuple[str, str]]:
    from training.jobs import list_loras

    root = cfg.resolve(cfg.data_dir)
    return [(str(p.parent.relative_to(root)), str(p)) for p in list_loras(cfg)]


def _background_defaults(ch, line=None, texture=None, color=None) -> dict[str, float]:
    """The background factors the Stylizer uses when the background fields are None (rounded for sliders)."""
    factors = resolve_factors(ch, line, texture, color)
    return {k: round(factors[k], 2) for k in BACKGROUND}


def _output_name(upload: str, character: str) -> str:
    """`<time>-<photo name>-<character>.png` (tabs.output_name)."""
    try:
        stem = safe_name(Path(upload).stem)
    except ValueError:  # a name with no usable characters
        stem = "photo"
    return output_name(stem, character)


def _preview(img: np.ndarray) -> np.ndarray:
    """The image for the before/after view: encoding a 24 MP photo twice for the browser costs seconds."""
    h, w = img.shape[:2]
    if max(h, w) <= PREVIEW_MAX_SIDE:
        return img
    from PIL import Image

    k = PREVIEW_MAX_SIDE / max(h, w)
    return np.asarray(Image.fromarray(img).resize((round(w * k), round(h * k)), Image.Resampling.BOX))


def _report(result, seconds: float) -> str:
    stages = " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items() if v >= 0.0005)
    light = result.info.get("light") or {}
    light_txt = ", ".join(f"{k} {v}" for k, v in light.items()) if light else "none needed"
    factors = ", ".join(f"{k} {v:.2f}" for k, v in result.factors.items())
    return (f"**{len(result.faces)} face(s)** · {result.image.shape[1]}×{result.image.shape[0]} · "
            f"character {result.params.character} · {result.teacher} teacher · {seconds:.2f} s\n\n"
            f"Light correction: {light_txt}\n\n<details><summary>Details</summary><small>factors: {factors}<br>"
            f"{stages}</small></details>")


def _user_errors() -> tuple:
    """Exceptions that describe a problem with the request (shown to the user as is), not a bug.

    Evaluated only when an exception is being matched, so the sd module is not imported up front.
    """
    errors: tuple = (ValueError, ImportError)
    try:
        from ...stylize.sd_teacher import SDModelMissing

        errors += (SDModelMissing,)
    except ImportError:
        pass
    return errors


def listen(ctx, ui: StylizeUI) -> None:
    def on_character(name):
        ch = known_character(ctx.cfg, name)
        background = _background_defaults(ch)
        return ([gr.update(info=ch.description)] + [gr.update(value=round(getattr(ch.defaults, n), 2)) for n in FACTORS]
                + [gr.update(value=round(background[n], 2)) for n in BACKGROUND])

    ui.character.change(on_character, ui.character,
                        [ui.character] + [ui.controls[n] for n in FACTORS + BACKGROUND], api_name=False)

    def on_bg_default(use_default, character, line, texture, color):
        # Unticking starts the background sliders from what the defaults would have used.
        values = _background_defaults(known_character(ctx.cfg, character), line, texture, color)
        return [gr.update(interactive=not use_default, value=values[n]) for n in BACKGROUND]

    ui.background_default.change(on_bg_default,
                                 [ui.background_default, ui.character, *(ui.controls[n] for n in FACTORS[:3])],
                                 [ui.controls[n] for n in BACKGROUND], api_name=False)

    def on_teacher(name):
        ready, reason = _sd_status(ctx.cfg) if name == "sd" else (True, "")
        return gr.update(info=TEACHER_HELP.get(name, name) if ready else reason), gr.update(visible=name == "sd")

    ui.teacher.change(on_teacher, ui.teacher, [ui.teacher, ui.sd_options], api_name=False)
    # LoRAs trained in the LoRA tab appear without a reload.
    ui.controls["loras"].focus(lambda: gr.update(choices=_lora_choices(ctx.cfg)), None, ui.controls["loras"],
                               api_name=False)
    ui.controls["base"].focus(lambda: gr.update(choices=base_choices(ctx.cfg)), None, ui.controls["base"],
                              api_name=False)

    # The handler's parameter names are the StylizeParams field names (and the API's parameter names); its inputs
    # are read off its signature (inputs_for), so order and meaning cannot drift apart.
    def stylize(image, character, teacher, line, texture, color, warp, normalize_light, background_default,
                background_line, background_texture, background_color, strength, steps, guidance, seed,
                base="", loras=None, lora_weight=0.8, progress=gr.Progress()):
        # 1. Check the photo.
        if not image:
            raise refuse("Upload a photo first.")
        try:
            photo = load_image(image, max_pixels=ctx.cfg.max_input_pixels)
        except ImageLoadError as exc:
            raise unusable_upload(exc) from None
        # 2. Gradio values → StylizeParams, by field name.
        fields = dict(character=character, teacher=teacher, line=line, texture=texture, color=color, warp=warp,
                      normalize_light=bool(normalize_light))
        if not background_default:
            fields.update(background_line=background_line, background_texture=background_texture,
                          background_color=background_color)
        if teacher == "sd":
            known = {path for _, path in _lora_choices(ctx.cfg)}
            unknown = [path for path in loras or () if path not in known]
            if unknown:  # only LoRAs of this studio's data folder, never an arbitrary path
                raise refuse(f"Unknown LoRA: {unknown[0]}")
            try:  # only the studio's own base models: a web user's name is never tried on disk or the hub
                base = offered_base(ctx.cfg, (base or "").strip() or ctx.cfg.sd.base)
            except ValueError as exc:
                raise refuse(str(exc)) from None
            missing = missing_here(ctx.cfg, base)  # said at once: the pages never wait on the network for a model
            if missing:
                raise refuse(missing)
            fields.update(strength=strength, steps=steps, guidance=guidance, seed=seed or 0, base=base,
                          loras=tuple((path, lora_weight) for path in loras or ()))
        # 3. Stylize (the Stylizer and the teacher's models load on first use).
        t0 = time.perf_counter()
        try:
            params = StylizeParams(**fields).checked()  # studio.checks: the CLI's rules, whatever the client sent
            progress(0.0, desc="loading models")
            stylizer = ctx.stylizer()
            stylizer.prepare(params)
            result = stylizer(photo, params, progress=lambda f, msg: progress(f, desc=msg))
        except _user_errors() as exc:
            raise refuse(str(exc)) from None
        # 4. Save the full-size PNG (atomically) under <data_dir>/outputs/.
        dest = save_image(result.image, ctx.cfg.resolve(ctx.cfg.data_dir) / "outputs"
                          / _output_name(image, params.character))
        return (_preview(photo), _preview(result.image)), str(dest), _report(result, time.perf_counter() - t0)

    document(ctx, "/stylize", image=Param("filepath", "the photo: a file (gradio_client.handle_file) or a URL"),
             character=character_param(ctx.cfg.default_character),
             **{name: factor(name) for name in FACTORS},
             background_default=Param("bool", "True: the background's factors follow the person's (the "
                                      "character's background offsets); False: the background_* values", True),
             **{name: Param("float", f"{name.replace('_', ' ')}, 0 to 1, read when background_default is "
                            "False; left out: from the person's factors", None) for name in BACKGROUND},
             steps=integer("sd teacher: denoising steps, 1 to 60", ctx.cfg.sd.steps),
             seed=integer("sd teacher: the random seed, 0 or more", 0))
    def make_booth(booth_photos, character, line, texture, color, warp, normalize_light, layout, captions,
                   progress=gr.Progress()):
        """Four uploaded photos, each stylised by the classic teacher as the controls above say, on one page."""
        files = list(booth_photos or [])
        if len(files) != SHOTS:
            raise refuse(f"Upload exactly {SHOTS} photos for the booth (got {len(files)}).")
        try:
            layout, lines = booth_options(layout, captions)
            params = StylizeParams(character=character, teacher="classic", line=line, texture=texture, color=color,
                                   warp=warp, normalize_light=bool(normalize_light)).checked()
            known_character(ctx.cfg, character)
            photos = [load_image(f, max_pixels=ctx.cfg.max_input_pixels) for f in files]
        except ImageLoadError as exc:
            raise unusable_upload(exc) from None
        except ValueError as exc:
            raise refuse(str(exc)) from None
        shots, boxes = [], []
        for i, photo in enumerate(photos):
            progress(i / SHOTS, desc=f"photo {i + 1} of {SHOTS}")
            result = ctx.stylizer()(shrink(photo, BOOTH_SIDE)[0], params)
            shots.append(result.image)
            boxes.append([(f.box.x0, f.box.y0, f.box.x1, f.box.y1) for f in result.faces])
        page, path = make_page(ctx.cfg, shots, boxes, layout, lines, params.character)
        return f"Done: {SHOTS} photos as {params.character}.", page, gr.update(value=path, interactive=True)

    ui.booth.button.click(make_booth, [ui.booth_photos, ui.character, *(ui.controls[n] for n in FACTORS),
                                       ui.controls["normalize_light"], ui.booth.layout, ui.booth.captions],
                          [ui.booth.status, ui.booth.page, ui.booth.download], api_name=False, concurrency_limit=1,
                          concurrency_id="stylize", show_progress_on=ui.booth.status)
    # The download button is enabled in a follow-up UI-only step, so the API returns a plain file path.
    ui.button.click(stylize, inputs_for(stylize, ui), [ui.compare, ui.download, ui.report], api_name="stylize",
                    concurrency_limit=1, concurrency_id="stylize").success(
        lambda: gr.update(interactive=True), None, ui.download, api_name=False, queue=False)
