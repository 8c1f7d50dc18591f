"""Stylize tab: upload a photo, pick a character, tune line/texture/color/warp (and the background), compare.

Controls are kept in a name → component mapping; the handler's parameters carry the StylizeParams field
names, which are also the names the API (gradio_client) shows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ...characters import list_characters
from ...io import ImageLoadError, load_image, safe_name, save_image
from ...types import StylizeParams

TITLE = "Stylize"
FACTORS = ("line", "texture", "color", "warp")
BACKGROUND = ("background_line", "background_texture", "background_color")
HELP = {
    "line": "Ink lines: none → many, thick",
    "texture": "Detail: photo → flat cel regions",
    "color": "Colour: photo → the character's palette",
    "warp": "Face shape: as photographed → the character's geometry",
}


@dataclass
class StylizeUI:
    image: gr.Image
    character: gr.Dropdown
    controls: dict  # StylizeParams field name -> component
    bg_default: gr.Checkbox
    button: gr.Button
    compare: gr.ImageSlider
    download: gr.File
    report: gr.Markdown


def render(ctx) -> StylizeUI:
    chars = list_characters(ctx.cfg)
    default = next((c for c in chars if c.name == ctx.cfg.default_character), chars[0])
    controls: dict = {}
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"], height=320)
            character = gr.Dropdown(label="Character", choices=[(c.display_name, c.name) for c in chars],
                                    value=default.name, info=default.description)
            for name in FACTORS:
                controls[name] = gr.Slider(0, 1, value=getattr(default.defaults, name), step=0.01,
                                           label=name.capitalize(), info=HELP[name])
            with gr.Accordion("Background", open=False):
                bg_default = gr.Checkbox(value=True, label="Use the character's background settings",
                                         info="Backgrounds are simpler than the person: fewer lines, flatter.")
                for name in BACKGROUND:
                    short = name.split("_", 1)[1]
                    controls[name] = gr.Slider(0, 1, value=0.5, step=0.01, label=f"Background {short}",
                                               interactive=False)
            controls["normalize_light"] = gr.Checkbox(value=True, label="Normalise lighting",
                                                      info="Lift dim and backlit photos, remove coloured light")
            button = gr.Button("Stylize", variant="primary")
        with gr.Column(scale=2):
            compare = gr.ImageSlider(label="Before / after", type="numpy", max_height=720)
            download = gr.File(label="Download PNG", interactive=False)
            report = gr.Markdown()
    return StylizeUI(image, character, controls, bg_default, button, compare, download, report)


def _report(result, seconds: float) -> str:
    stages = " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items() if v >= 0.0005)
    light = result.info.get("light") or {}
    light_txt = ", ".join(f"{k} {v}" for k, v in light.items()) if light else "none needed"
    return (f"**{len(result.faces)} face(s)** · {result.image.shape[1]}×{result.image.shape[0]} · "
            f"{seconds:.2f} s\n\nLight correction: {light_txt}\n\n<small>{stages}</small>")


def listen(ctx, ui: StylizeUI) -> None:
    def on_character(name):
        from ...characters import load_character

        ch = load_character(name, ctx.cfg)
        return [gr.update(info=ch.description)] + [gr.update(value=getattr(ch.defaults, n)) for n in FACTORS]

    ui.character.change(on_character, ui.character, [ui.character] + [ui.controls[n] for n in FACTORS],
                        api_name=False)

    def on_bg_default(use_default):
        return [gr.update(interactive=not use_default) for _ in BACKGROUND]

    ui.bg_default.change(on_bg_default, ui.bg_default, [ui.controls[n] for n in BACKGROUND], api_name=False)

    # The handler's parameter names are the StylizeParams field names (and the API's parameter names);
    # the inputs list is built from the same names, so order and meaning cannot drift apart.
    def stylize(image, character, line, texture, color, warp, background_default, background_line,
                background_texture, background_color, normalize_light, progress=gr.Progress()):
        if not image:
            raise gr.Error("Upload a photo first.")
        try:
            photo = load_image(image, max_pixels=ctx.cfg.max_input_pixels)
        except ImageLoadError as exc:
            raise gr.Error(f"Can't use this file: {str(exc).split(': ', 1)[-1]}") from None
        background = (dict.fromkeys(BACKGROUND) if background_default else
                      dict(background_line=background_line, background_texture=background_texture,
                           background_color=background_color))
        try:
            params = StylizeParams(character=character, line=line, texture=texture, color=color, warp=warp,
                                   normalize_light=bool(normalize_light), **background)
            params.validate()
            t0 = time.perf_counter()
            progress(0.0, desc="loading models")
            result = ctx.stylizer()(photo, params, progress=lambda f, msg: progress(f, desc=msg))
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        out_dir = ctx.cfg.resolve(ctx.cfg.data_dir) / "outputs"
        stem = Path(image).stem
        stem = safe_name(stem) if stem.strip("._ ") else "photo"
        dest = save_image(result.image, out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{params.character}.png")
        return (photo, result.image), str(dest), _report(result, time.perf_counter() - t0)

    inputs = [ui.image, ui.character, *(ui.controls[n] for n in FACTORS), ui.bg_default,
              *(ui.controls[n] for n in BACKGROUND), ui.controls["normalize_light"]]
    ui.button.click(stylize, inputs, [ui.compare, ui.download, ui.report], api_name="stylize", concurrency_limit=1)
