"""Characters tab: create a character from tens of reference images.

Upload references → Fit (palette swatches, skin colour, line weight, default factors, eye/face geometry)
→ preview on a sample photo → Save (into `<data_dir>/characters/<name>/`). Works with no SD weights; a
character LoRA is trained from the same references in the LoRA tab (kind: character, same name).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import gradio as gr

from ...characters import (character_from_profile, check_name, fit_profile, list_characters, load_character,
                           save_character)
from ...io import ImageLoadError, load_image
from ...types import StylizeParams
from . import inputs_for

TITLE = "Characters"
MAX_REFERENCES = 100


@dataclass
class CharactersUI:
    files: gr.File
    name: gr.Textbox
    base: gr.Dropdown
    fit: gr.Button
    swatches: gr.HTML
    profile: gr.Markdown
    sample: gr.Image
    preview_button: gr.Button
    preview: gr.Image
    save: gr.Button
    status: gr.Markdown
    state: gr.State


def render(ctx) -> CharactersUI:
    chars = list_characters(ctx.cfg)
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(label=f"Reference images (up to {MAX_REFERENCES})", file_count="multiple",
                            file_types=["image"])
            name = gr.Textbox(label="Name", placeholder="e.g. hana")
            base = gr.Dropdown(choices=[(c.display_name, c.name) for c in chars], value=ctx.cfg.default_character,
                               label="Start from", info="Shading and colours not measured come from this character")
            fit = gr.Button("Fit profile", variant="primary")
        with gr.Column(scale=1):
            swatches = gr.HTML()
            profile = gr.Markdown("Upload references and press **Fit profile**.")
            sample = gr.Image(label="Sample photo", type="filepath", height=220)
            preview_button = gr.Button("Preview on the sample")
        with gr.Column(scale=1):
            preview = gr.Image(label="Preview", type="numpy", interactive=False, height=360)
            save = gr.Button("Save character", variant="primary")
            status = gr.Markdown()
    return CharactersUI(files, name, base, fit, swatches, profile, sample, preview_button, preview, save, status,
                        gr.State(None))


def _swatches(character) -> str:
    cells = "".join(f'<div title="{c}" style="width:28px;height:28px;background:{c};display:inline-block;'
                    f'border:1px solid #8884;margin:1px"></div>' for c in character.palette)
    ramp = "".join(f'<div title="{c}" style="width:28px;height:14px;background:{c};display:inline-block"></div>'
                   for c in character.skin_ramp)
    return f"<div><b>Palette</b><br>{cells}</div><div style='margin-top:6px'><b>Skin ramp</b><br>{ramp}</div>"


def _describe(character, profile) -> str:
    d, g = character.defaults, character.geometry
    eye = f"{profile.eye_to_face:.2f} of face width" if profile.eye_to_face else "no face found"
    return (f"**{profile.n_images} references, {profile.n_faces} faces** · line weight {character.line_weight:.2f} "
            f"(strokes ≈ {profile.line_weight:.1f} px)\n\nDefaults: line {d.line:.2f}, texture {d.texture:.2f}, "
            f"color {d.color:.2f} · eyes {eye} → eye scale {g.eye_scale:.2f}, face width {g.face_width:.2f}")


def listen(ctx, ui: CharactersUI) -> None:
    def fit(files, name, base, progress=gr.Progress()):
        if not files:
            raise gr.Error("Upload reference images first.")
        if not (name or "").strip():
            raise gr.Error("Give the character a name.")
        try:
            safe = check_name(name, ctx.cfg)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        images, skipped = [], 0
        for f in list(files)[:MAX_REFERENCES]:
            try:
                images.append(load_image(f, max_pixels=ctx.cfg.max_input_pixels))
            except ImageLoadError:
                skipped += 1
        if not images:
            raise gr.Error("None of the files could be read as an image.")
        stylizer = ctx.stylizer()
        faces = []
        for i, img in enumerate(images):
            progress(i / len(images), desc="finding faces")
            faces.append(stylizer.perceive(img).faces)
        progress(1.0, desc="fitting")
        profile = fit_profile(images, ctx.cfg, faces)
        character = character_from_profile(safe, profile, load_character(base, ctx.cfg))
        note = f"\n\n{skipped} file(s) skipped (not images)." if skipped else ""
        return _swatches(character), _describe(character, profile) + note, (character, profile, images)

    ui.fit.click(fit, inputs_for(fit, ui), [ui.swatches, ui.profile, ui.state], api_name="fit_character")

    def preview(sample, state):
        if state is None:
            raise gr.Error("Fit a profile first.")
        if not sample:
            raise gr.Error("Upload a sample photo.")
        character = state[0]
        try:
            photo = load_image(sample, max_pixels=ctx.cfg.max_input_pixels)
        except ImageLoadError as exc:
            raise gr.Error(str(exc)) from None
        # The fitted character lives in this session until it is saved: it is handed to this call only, so no other
        # session sees it (or has a built-in replaced by it).
        return ctx.stylizer()(photo, StylizeParams(character=character.name), character=character).image

    ui.preview_button.click(preview, inputs_for(preview, ui), ui.preview, api_name="preview_character")

    def save(state, name):
        if state is None:
            raise gr.Error("Fit a profile first.")
        character, profile, images = state
        try:  # the name in the box now, not the one it had at Fit
            character = replace(character, name=check_name(name, ctx.cfg),
                                display_name=name.strip().replace("_", " ").title())
            folder = save_character(character, profile, images, ctx.cfg)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        choices = [(c.display_name, c.name) for c in list_characters(ctx.cfg)]
        msg = f"Saved to `{folder}`. It is in the character pickers now."
        return (msg, *(gr.update(choices=choices) for _ in pickers))

    # This tab's "Start from" list, and the Stylize tab's character picker when that tab is present.
    pickers = [ui.base] + [c for c in (ctx.components.get("stylize.character"),) if c is not None]
    ui.save.click(save, inputs_for(save, ui), [ui.status, *pickers], api_name="save_character")
