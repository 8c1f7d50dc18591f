"""The four-cut photo booth (네 컷 사진) in the studio's pages: the controls the Webcam tab (four shots of the live
stylised camera, each after a visible countdown) and the Stylize tab (four uploaded photos, each stylised by the
teacher) share, and the page they make: studio.booth lays it out, the PNG goes to `<data_dir>/outputs/`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import gradio as gr
import numpy as np

from ..booth import LAYOUTS, SHOTS, compose_booth, focus_point
from ..io import save_image
from .tabs import output_name

LAYOUT_CHOICES = [("Strip (1×4)", "strip"), ("Page (2×2)", "grid")]


@dataclass
class BoothUI:
    layout: gr.Radio
    captions: gr.Textbox
    button: gr.Button
    status: gr.Markdown
    page: gr.Image
    download: gr.DownloadButton


def render_booth(prefix: str, button_label: str) -> BoothUI:
    """The booth's controls, inside the caller's layout (an Accordion)."""
    with gr.Row():
        layout = gr.Radio(LAYOUT_CHOICES, value="strip", label="Layout", elem_id=f"{prefix}-booth-layout")
        captions = gr.Textbox("", lines=4, max_lines=4, label="Captions (optional, one line per panel)",
                              placeholder="하나\n둘\n셋\n넷", elem_id=f"{prefix}-booth-captions")
    button = gr.Button(button_label, variant="primary", elem_id=f"{prefix}-booth-button")
    status = gr.Markdown(label="Booth", elem_id=f"{prefix}-booth-status")
    page = gr.Image(label="Four-cut page", type="numpy", interactive=False, height=480, elem_id=f"{prefix}-booth-page")
    download = gr.DownloadButton("Download the page (PNG)", interactive=False, elem_id=f"{prefix}-booth-download")
    return BoothUI(layout, captions, button, status, page, download)


def booth_options(layout: Optional[str], captions: Optional[str]) -> tuple[str, list[str]]:
    """The layout and up to four caption lines, or a ValueError in one line."""
    layout = layout or "strip"
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    lines = [line.strip() for line in str(captions or "").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > SHOTS:
        raise ValueError(f"at most {SHOTS} caption lines (one per panel), got {len(lines)}")
    return layout, lines


def make_page(cfg, shots: Sequence[np.ndarray], boxes: Sequence[Sequence], layout: str, captions: list[str],
              name: str) -> tuple[np.ndarray, str]:
    """The page (each crop kept on its shot's faces, today's date in the footer) and the PNG it was saved to."""
    page = compose_booth(shots, layout, captions=captions or None, title=time.strftime("%Y.%m.%d"),
                         focus=[focus_point(b) for b in boxes])
    dest = save_image(page, cfg.resolve(cfg.data_dir) / "outputs" / output_name("booth", name))
    return page, str(dest)
