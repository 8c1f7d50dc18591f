"""네 컷 사진: four pictures on one page, laid out like a Korean four-cut photo booth print.

    from studio.booth import compose_booth, booth_layout
    page = compose_booth([a, b, c, d], layout="strip", captions=["하나", "둘", "", "넷"], title="2025.05.01")
    save_image(page, "booth.png")                       # studio.io: written atomically
    booth_layout("grid", captions=True).panels          # where each panel lands: (x0, y0, x1, y1) boxes
    compose_booth(shots, "grid", focus=[focus_point(face_boxes) for face_boxes in faces])  # crops kept on faces

    python -m studio booth p1.jpg p2.jpg p3.jpg p4.jpg --character pastel --out booth.png   # the teacher
    python -m realtime.camera --booth --countdown 3 --out booth.png                      # four camera shots

`strip` is the booth's 1×4 vertical strip of landscape panels, `grid` its 2×2 page of portrait panels. Each
picture is cropped to the common panel aspect (centred, or on its faces when told where they are) and resized, so
four photos of any sizes line up; a border line is drawn just inside each panel's edge; gutters (the background)
separate the panels and frame the page. Captions, when given, go in a band under each panel, and a title (the
booths print the date) in a footer.

Pure layout (numpy, OpenCV, Pillow): no stylising here, and no realtime or gradio import. Text is drawn with a
TrueType font that has the caption's glyphs: a Hangul one (the system's Noto Sans CJK, NanumGothic, Apple SD Gothic
Neo, Malgun Gothic or fontconfig's pick; else the NanumGothic inside the koreanize-matplotlib wheel that
requirements.txt installs), else DejaVu Sans, else Pillow's own font. A character no font here draws is shown as
the font's empty box, never an error (`missing_glyphs` says which, so a CLI can say what to install). A caption is
cut to CAPTION_CHARS characters, and shrunk, then cut with "…", to fit its panel.
"""
from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .checks import Rule

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)
Color = Union[str, Sequence[int]]
Point = tuple[float, float]

# rows, columns, panel width / height. The strip's panels are landscape (a 2x6 inch strip holds four 4:3 shots);
# the 2x2 page's are portrait.
LAYOUTS = {"strip": (4, 1, 4 / 3), "grid": (2, 2, 3 / 4)}
SHOTS = 4
PANEL_WIDTH = Rule(64, 1024, integer=True)  # a panel's width in px: the page stays a few megapixels at most
BORDER = Rule(0, 32, integer=True)
GUTTER = Rule(0, 256, integer=True)
ASPECT = Rule(0.25, 4.0)  # panel width / height
DEFAULT_PANEL_WIDTH = 480
CAPTION_CHARS = 40  # longer captions are cut (with "…"): a band under a 480 px panel holds about that many
MIN_FONT = 10  # px, and at least 60% of the band's size: a caption is shrunk down to that, then cut to fit

# Fonts that draw Hangul, then plain Latin ones; the first that has every glyph of a text draws it.
HANGUL_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",  # Debian/Ubuntu fonts-nanum
    "/usr/share/fonts/nanum/NanumGothic.ttf",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "/Library/Fonts/AppleGothic.ttf",
    "C:/Windows/Fonts/malgun.ttf",
)
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


@dataclass(frozen=True)
class BoothLayout:
    """Where everything goes on the page, in pixels."""

    size: tuple[int, int]  # width, height of the page
    panels: list[Rect]  # the four pictures, in reading order
    captions: list[Rect]  # the band under each panel ([] without captions)
    footer: Optional[Rect]  # the title's band (None without a title)
    border: int
    gutter: int


def booth_layout(layout: str = "strip", captions: bool = False, title: bool = False, border: int = 3,
                 gutter: int = 24, panel_width: Optional[int] = None, aspect: Optional[float] = None) -> BoothLayout:
    """The page's geometry: gutters around and between the panels, a caption band under each panel when
    `captions`, a footer when `title`. ValueError (one line) for an unknown layout or an out-of-range number."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown booth layout {layout!r}; choices: {', '.join(LAYOUTS)}")
    rows, cols, default_aspect = LAYOUTS[layout]
    pw = PANEL_WIDTH.check("panel_width", DEFAULT_PANEL_WIDTH if panel_width is None else panel_width)
    a = ASPECT.check("aspect", default_aspect if aspect is None else aspect)
    border, gutter = BORDER.check("border", border), GUTTER.check("gutter", gutter)
    ph = max(1, round(pw / a))
    if 2 * border >= min(pw, ph):
        raise ValueError(f"border {border} leaves nothing of a {pw}x{ph} panel")
    cap_h = max(24, round(pw * 0.12)) if captions else 0
    foot_h = max(32, round(pw * 0.16)) if title else 0
    width = cols * pw + (cols + 1) * gutter
    panels, bands = [], []
    for r in range(rows):
        y = gutter + r * (ph + cap_h + gutter)
        for c in range(cols):
            x = gutter + c * (pw + gutter)
            panels.append((x, y, x + pw, y + ph))
            if captions:
                bands.append((x, y + ph, x + pw, y + ph + cap_h))
    y = gutter + rows * (ph + cap_h + gutter)
    footer = (0, y, width, y + foot_h) if title else None
    return BoothLayout((width, y + foot_h), panels, bands, footer, border, gutter)


def compose_booth(images: Sequence[np.ndarray], layout: str = "strip", captions: Optional[Sequence[str]] = None,
                  title: Optional[str] = None, border: int = 3, gutter: int = 24, background: Color = "#ffffff",
                  border_color: Color = "#1e1e1e", panel_width: Optional[int] = None,
                  aspect: Optional[float] = None, focus: Optional[Sequence[Optional[Point]]] = None) -> np.ndarray:
    """The four-cut page as RGB uint8. `images`: exactly four RGB uint8 pictures (grey and RGBA are converted),
    any sizes. `captions`: up to four texts, one per panel in order ("" or None: that band stays empty; the bands
    are there whenever `captions` is given). `title`: the footer's text (None or blank: no footer). Colours are
    "#rrggbb" or (r, g, b). `focus`: per image, None (a centre crop) or the (x, y) pixel the crop is placed on,
    say the faces' centre (`focus_point`), so that a person off-centre is not cut by a narrow panel. ValueError,
    one line, for anything it cannot lay out."""
    # 1. check inputs
    images = list(images) if images is not None else []
    if len(images) != SHOTS:
        raise ValueError(f"a four-cut page needs exactly {SHOTS} images, got {len(images)}")
    pictures = [_rgb(im, i) for i, im in enumerate(images)]
    focus = list(focus) if focus is not None else [None] * SHOTS
    if len(focus) != SHOTS:
        raise ValueError(f"focus needs one entry (None or (x, y)) per image, got {len(focus)}")
    if captions is not None:
        captions = list(captions)
        if len(captions) > SHOTS:
            raise ValueError(f"at most {SHOTS} captions (one per panel), got {len(captions)}")
        captions = [clean_caption(c) for c in captions] + [""] * (SHOTS - len(captions))
    title = clean_caption(title) if title is not None else ""
    bg, ink = _color(background, "background"), _color(border_color, "border_color")
    geo = booth_layout(layout, captions is not None, bool(title), border, gutter, panel_width, aspect)
    # 2. the page, the panels and their borders
    page = np.empty((geo.size[1], geo.size[0], 3), np.uint8)
    page[:] = bg
    b = geo.border
    for picture, at, (x0, y0, x1, y1) in zip(pictures, focus, geo.panels):
        page[y0:y1, x0:x1] = fit_panel(picture, x1 - x0, y1 - y0, at)
        if b:
            page[y0:y0 + b, x0:x1] = ink
            page[y1 - b:y1, x0:x1] = ink
            page[y0:y1, x0:x0 + b] = ink
            page[y0:y1, x1 - b:x1] = ink
    # 3. the captions and the title, each drawn inside its own band
    text_color = (30, 30, 30) if sum(bg) >= 3 * 128 else (240, 240, 240)
    for text, rect in zip(captions or [], geo.captions):
        _draw_text(page, rect, text, bg, text_color, 0.5)
    if geo.footer is not None:
        _draw_text(page, geo.footer, title, bg, text_color, 0.45)
    return page


def fit_panel(image: np.ndarray, width: int, height: int, focus: Optional[Point] = None) -> np.ndarray:
    """`image` cropped to width:height and resized to exactly (height, width). The crop is centred, or placed on
    `focus` as far as the image allows: centred on it across, with it at 40% of the height down (faces sit
    above the middle of a portrait)."""
    h, w = image.shape[:2]
    target = width / height
    if w / h > target:  # too wide: keep a band of columns
        cw = max(1, round(h * target))
        x = (w - cw) // 2 if focus is None else _clamp(round(focus[0] - cw / 2), 0, w - cw)
        image = image[:, x:x + cw]
    else:
        ch = max(1, round(w / target))
        y = (h - ch) // 2 if focus is None else _clamp(round(focus[1] - 0.4 * ch), 0, h - ch)
        image = image[y:y + ch]
    shrinking = image.shape[1] >= width
    return cv2.resize(np.ascontiguousarray(image), (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def focus_point(boxes: Sequence[Sequence[float]]) -> Optional[Point]:
    """The centre of the boxes' extent ((x0, y0, x1, y1) each: the faces in a picture), or None without boxes."""
    boxes = [tuple(map(float, b)) for b in boxes]
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return ((x0 + x1) / 2, (y0 + y1) / 2)


def clean_caption(text) -> str:
    """One line of printable text, at most CAPTION_CHARS characters (cut with "…"): control characters and
    line breaks become spaces, runs of spaces one space."""
    if text is None:
        return ""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))
    text = " ".join(text.split())
    return text if len(text) <= CAPTION_CHARS else text[:CAPTION_CHARS - 1].rstrip() + "…"


def missing_glyphs(text: str) -> str:
    """The characters of `text` that no font found here draws (they show as empty boxes); "" when all are drawn or
    the fonts' character maps cannot be read."""
    files = font_files()
    if not files:
        return "".join(dict.fromkeys(ch for ch in text if not ch.isspace() and ord(ch) > 0x7E))
    maps = [_cmap(f) for f in files]
    if any(m is None for m in maps):
        return ""
    return "".join(dict.fromkeys(ch for ch in text if not ch.isspace() and not any(ord(ch) in m for m in maps)))


# --------------------------------------------------------------------------------------------------- helpers
def _rgb(image, i: int) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"image {i + 1} must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 2:
        raise ValueError(f"image {i + 1} must be an RGB picture (H, W, 3), got shape {a.shape}")
    return a[..., :3]


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def _color(value: Color, name: str) -> tuple[int, int, int]:
    if isinstance(value, str):
        s = value.strip().lstrip("#")
        if len(s) == 6 and all(ch in "0123456789abcdefABCDEF" for ch in s):
            return tuple(int(s[i:i + 2], 16) for i in (0, 2, 4))
    else:
        try:
            rgb = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) == 3 and all(0 <= v <= 255 for v in rgb):
            return rgb
    raise ValueError(f"{name} must be '#rrggbb' or (r, g, b) in 0-255, got {value!r}")


@functools.lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """The TrueType fonts found here, Hangul ones first: fontconfig's pick for Korean, the known paths, then the
    DejaVu Sans that matplotlib ships."""
    found: list[str] = []
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}", "sans-serif:lang=ko"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            found.append(out)
    # NanumGothic ships inside the koreanize-matplotlib wheel (requirements.txt), DejaVu Sans inside matplotlib's:
    # both found by path, never imported (importing koreanize_matplotlib would change matplotlib's settings).
    found += list(HANGUL_FONTS) + _in_package("koreanize_matplotlib", "fonts/NanumGothic.ttf")
    found += list(LATIN_FONTS) + _in_package("matplotlib", "mpl-data/fonts/ttf/DejaVuSans.ttf")
    files = list(dict.fromkeys(f for f in found if Path(f).is_file()))
    hangul = [f for f in files if (m := _cmap(f)) is not None and ord("한") in m]
    return tuple(hangul + [f for f in files if f not in hangul])


def _in_package(module: str, relative: str) -> list[str]:
    """[the path of `relative` inside the installed package `module`], found without importing it; [] without it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [str(Path(list(spec.submodule_search_locations)[0]) / relative)]


@functools.lru_cache(maxsize=16)
def _cmap(path: str) -> Optional[frozenset]:
    """The code points a font file draws, or None when that cannot be read (fontTools missing, a broken file)."""
    try:
        from fontTools.ttLib import TTFont

        with TTFont(path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # noqa: BLE001 - any unreadable font is just not asked; the next one is
        return None


def _font_for(text: str, size: int):
    """The first font here that draws every character of `text` (else the first font; else Pillow's own)."""
    files = font_files()
    wanted = {ord(ch) for ch in text if not ch.isspace()}
    for f in files:
        m = _cmap(f)
        if m is None or wanted <= m:
            return ImageFont.truetype(f, size)
    if files:
        return ImageFont.truetype(files[0], size)
    return ImageFont.load_default(size=size)


def _draw_text(page: np.ndarray, rect: Rect, text: str, bg, color, height_share: float) -> None:
    """`text` centred in `rect` of `page`, as large as `height_share` of the band allows, shrunk (then cut) to fit
    its width; drawn on a tile of the band's size, so no pixel outside the band changes."""
    if not text:
        return
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    tile = Image.new("RGB", (w, h), tuple(bg))
    draw = ImageDraw.Draw(tile)
    room = max(1, w - max(8, w // 20))
    size = max(MIN_FONT, round(h * height_share))
    smallest = max(MIN_FONT, round(size * 0.6))  # smaller is hard to read on a print: the text is cut instead
    try:
        font = _font_for(text, size)
        while draw.textlength(text, font=font) > room and size > smallest:
            size = max(smallest, int(size * 0.9))
            font = _font_for(text, size)
        while draw.textlength(text, font=font) > room and len(text) > 1:
            text = text[:-2].rstrip() + "…"
        box = draw.textbbox((0, 0), text, font=font)
        xy = ((w - (box[2] - box[0])) / 2 - box[0], (h - (box[3] - box[1])) / 2 - box[1])
        draw.text(xy, text, font=font, fill=tuple(color))
    except (UnicodeError, OSError, ValueError):
        # Pillow's bitmap font (no FreeType here) cannot encode most of Unicode: the caption in ASCII instead
        plain = text.encode("ascii", "replace").decode("ascii")
        font = ImageFont.load_default()
        draw.text((4, max(0, (h - 11) // 2)), plain, font=font, fill=tuple(color))
    page[y0:y1, x0:x1] = np.asarray(tile)
