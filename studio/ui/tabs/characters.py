"""Characters tab: create a character from tens of reference images.

Upload references → Fit (palette swatches, skin colour, line weight, default factors, eye/face geometry)
→ preview on a sample photo → Save (into `<data_dir>/characters/<name>/`). Works with no SD weights; a
character LoRA is trained from the same references in the LoRA tab (kind: character, same name).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import gradio as gr

from ...characters import character_from_profile, check_name, fit_profile, load_character, save_character
from ...color import shrink
from ...io import ImageLoadError, load_image
from ...types import StylizeParams
from ..api import Param, character_param, document
from ..components import character_picker, photo_upload
from . import inputs_for, refuse, session_of, unusable_upload

TITLE = "Characters"
MAX_REFERENCES = 100
REFERENCE_SIDE = 1024  # references are kept at this long side: the fit measures at 512, a character LoRA trains at
#                        512-1024 (three 4000x3000 uploads held whole were 100 MB of one session's memory)
MAX_FITS = 8  # sessions whose unsaved fit is held at once; the least recently used is dropped first


class Fits:
    """Each session's fitted, unsaved character (character, profile, reduced references): its own, bounded in
    count, and freed when its page closes (gr.State would keep it an hour after)."""

    def __init__(self, limit: int = MAX_FITS):
        self.limit = limit
        self._fits: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session: str, fit: tuple) -> None:
        with self._lock:
            self._fits[session] = fit
            self._fits.move_to_end(session)
            while len(self._fits) > self.limit:
                self._fits.popitem(last=False)

    def get(self, session: str) -> tuple:
        with self._lock:
            if session not in self._fits:
                raise refuse("Fit a profile first.")
            self._fits.move_to_end(session)
            return self._fits[session]

    def drop(self, session: str) -> None:
        with self._lock:
            self._fits.pop(session, None)

    def __len__(self) -> int:
        return len(self._fits)


def _fits(ctx) -> Fits:
    with ctx._lock:
        if ctx.fits is None:
            ctx.fits = Fits()
        return ctx.fits


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


def render(ctx) -> CharactersUI:
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(label=f"Reference images (up to {MAX_REFERENCES})", file_count="multiple",
                            file_types=["image"], elem_id="character-references")
            name = gr.Textbox(label="Name", placeholder="e.g. hana", elem_id="character-name")
            base = character_picker(ctx, label="Start from", elem_id="character-base",
                                    info="Shading and colours not measured come from this character")
            fit = gr.Button("Fit profile", variant="primary", elem_id="character-fit")
        with gr.Column(scale=1):
            swatches = gr.HTML(label="Palette")
            profile = gr.Markdown("Upload references and press **Fit profile**.", label="Profile",
                                  elem_id="character-profile")
            sample = photo_upload(label="Sample photo", height=220)
            preview_button = gr.Button("Preview on the sample")
        with gr.Column(scale=1):
            preview = gr.Image(label="Preview", type="numpy", interactive=False, height=360)
            save = gr.Button("Save character", variant="primary", elem_id="character-save")
            status = gr.Markdown(label="Status", elem_id="character-status")
    return CharactersUI(files, name, base, fit, swatches, profile, sample, preview_button, preview, save, status)


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
    def fit(files, name, base, request: gr.Request = None, progress=gr.Progress()):
        if not files:
            raise refuse("Upload reference images first.")
        if not (name or "").strip():
            raise refuse("Give the character a name.")
        try:
            safe = check_name(name, ctx.cfg)
            start_from = load_character(base, ctx.cfg)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        images, skipped = [], 0
        for f in list(files)[:MAX_REFERENCES]:
            try:
                images.append(shrink(load_image(f, max_pixels=ctx.cfg.max_input_pixels), REFERENCE_SIDE)[0])
            except ImageLoadError:
                skipped += 1
        if not images:
            raise refuse("None of the files could be read as an image.")
        stylizer = ctx.stylizer()
        faces = []
        for i, img in enumerate(images):
            progress(i / len(images), desc="finding faces")
            faces.append(stylizer.perceive(img).faces)
        progress(1.0, desc="fitting")
        profile = fit_profile(images, ctx.cfg, faces)
        character = character_from_profile(safe, profile, start_from)
        note = f"\n\n{skipped} file(s) skipped (not images)." if skipped else ""
        _fits(ctx).put(session_of(request), (character, profile, images))
        return _swatches(character), _describe(character, profile) + note

    ui.fit.click(fit, inputs_for(fit, ui), [ui.swatches, ui.profile], api_name="fit_character")

    def preview(sample, request: gr.Request = None):
        character = _fits(ctx).get(session_of(request))[0]
        if not sample:
            raise refuse("Upload a sample photo.")
        try:
            photo = load_image(sample, max_pixels=ctx.cfg.max_input_pixels)
        except ImageLoadError as exc:
            raise unusable_upload(exc) from None
        # The fitted character lives in this session until it is saved: it is handed to this call only, so no other
        # session sees it (or has a built-in replaced by it).
        return ctx.stylizer()(photo, StylizeParams(character=character.name), character=character).image

    ui.preview_button.click(preview, inputs_for(preview, ui), ui.preview, api_name="preview_character")

    def save(name, request: gr.Request = None):
        character, profile, images = _fits(ctx).get(session_of(request))
        try:  # the name in the box now, not the one it had at Fit
            character = replace(character, name=check_name(name, ctx.cfg),
                                display_name=name.strip().replace("_", " ").title())
            folder = save_character(character, profile, images, ctx.cfg)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        return f"Saved **{character.name}** to `{folder}`: it is in every character picker, and in the API, now."

    document(ctx, "/fit_character", files=Param("list[filepath]", f"reference images (up to {MAX_REFERENCES})"),
             name=Param("str", "the new character's name (letters, digits, _ and -; not a built-in's)"),
             base=character_param(ctx.cfg.default_character))
    document(ctx, "/preview_character", sample=Param("filepath", "a photo to draw as the fitted character"))
    document(ctx, "/save_character", name=Param("str", "the name to save the fitted character under"))
    # Every tab's character picker is refreshed after a save (studio.ui.app wires ctx.character_saved).
    ctx.character_saved.append(ui.save.click(save, inputs_for(save, ui), ui.status, api_name="save_character"))


def unload(ctx):
    """The function studio.ui.app registers with `Blocks.unload`: the closed page's unsaved fit is freed."""

    def close(request: gr.Request):
        if ctx.fits is not None:
            ctx.fits.drop(session_of(request))

    return close
