"""Number inputs whose value reaches the handler as the client sent it, so that the handler's check (studio.checks:
the command line's rules) answers every API call with its one line. Gradio's own Slider and Number check only
their bounds, let NaN through (no comparison with NaN is true) and answer a string with a null error and a
traceback in the server log. The page looks and behaves the same: these are gradio's components, with their
`preprocess` step (bounds and rounding) left to the handler. (Not subclasses: gradio writes a .pyi stub beside
the module of every Component subclass.)"""
from __future__ import annotations

import gradio as gr


def _as_sent(component):
    component.preprocess = lambda payload: payload
    return component


def slider(*args, **kwargs) -> gr.Slider:
    return _as_sent(gr.Slider(*args, **kwargs))


def number(*args, **kwargs) -> gr.Number:
    return _as_sent(gr.Number(*args, **kwargs))


def character_choices(cfg) -> list[tuple[str, str]]:
    from ..characters import list_characters

    return [(c.display_name, c.name) for c in list_characters(cfg)]


def character_picker(ctx, value=None, **kwargs) -> gr.Dropdown:
    """A character dropdown listing the characters on disk, refreshed when the page loads and after a character is
    saved (studio.ui.app wires both: `ctx.pickers`). A name typed or sent by an API client that is not listed yet
    reaches the handler, which loads it from disk (a character saved by another session is usable at once) or
    refuses it with the list of names."""
    picker = gr.Dropdown(choices=character_choices(ctx.cfg), value=value or ctx.cfg.default_character,
                         allow_custom_value=True, **kwargs)
    ctx.pickers.append(picker)
    return picker


def photo_upload(**kwargs) -> gr.Image:
    """An image upload whose handler gets the uploaded file's path, unopened: the project's own check
    (studio.io.load_image: size bounds, decompression bombs, truncation, transparency) answers first, in its words,
    rather than gradio's generic message naming the server's temporary path."""
    component = gr.Image(type="filepath", **kwargs)

    def path_of(payload):
        if payload is None:
            return None
        return getattr(payload, "path", None) or (payload.get("path") if isinstance(payload, dict) else None)

    component.preprocess = path_of
    return component
