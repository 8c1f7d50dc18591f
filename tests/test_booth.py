"""The four-cut booth page (studio/booth.py): sizes of both layouts, borders and gutters where the layout puts them,
captions that touch only their bands, crops kept on a focus point, refusals in one line, and captions in any script
(or none this machine can draw) drawn without an error. `python -m studio booth` on four small real photos."""
import contextlib
import io

import numpy as np
import pytest

from studio import __main__ as studio_cli
from studio import booth
from studio.booth import booth_layout, compose_booth

GREY = 128
WHITE, INK = (255, 255, 255), (30, 30, 30)


def flat(h=300, w=400, value=GREY):
    return np.full((h, w, 3), value, np.uint8)


def test_layout_sizes():
    strip = booth_layout("strip")  # 480x360 panels, gutters of 24
    assert strip.size == (480 + 2 * 24, 4 * 360 + 5 * 24)
    grid = booth_layout("grid")  # 480x640 panels
    assert grid.size == (2 * 480 + 3 * 24, 2 * 640 + 3 * 24)
    full = booth_layout("strip", captions=True, title=True)
    assert full.size[1] > strip.size[1] and len(full.captions) == 4 and full.footer[3] == full.size[1]
    for layout in ("strip", "grid"):
        for kw in ({}, dict(captions=["a"], title="t"), dict(panel_width=200, gutter=0, border=0)):
            page = compose_booth([flat()] * 4, layout, **kw)
            geo = booth_layout(layout, "captions" in kw, "title" in kw, kw.get("border", 3), kw.get("gutter", 24),
                               kw.get("panel_width"))
            assert page.shape == (geo.size[1], geo.size[0], 3) and page.dtype == np.uint8


def test_borders_and_gutters_are_where_the_layout_says():
    for layout in ("strip", "grid"):
        page = compose_booth([flat()] * 4, layout, border=4, gutter=20, background=WHITE, border_color=INK)
        geo = booth_layout(layout, border=4, gutter=20)
        inside = np.ones(page.shape[:2], bool)  # becomes: the pixels outside every panel (the gutters)
        for x0, y0, x1, y1 in geo.panels:
            inside[y0:y1, x0:x1] = False
            panel = page[y0:y1, x0:x1]
            for edge in (panel[:4], panel[-4:], panel[:, :4], panel[:, -4:]):
                assert (edge == INK).all()
            assert (panel[4:-4, 4:-4] == GREY).all()  # the picture, untouched inside its border
            assert (page[y0 - 20:y0, x0:x1] == WHITE).all()  # the gutter above it
        assert (page[inside] == WHITE).all()
    columns = {x0 for x0, *_ in booth_layout("grid").panels}
    rows = {y0 for _, y0, *_ in booth_layout("grid").panels}
    assert len(columns) == 2 and len(rows) == 2  # 2x2
    assert len({x0 for x0, *_ in booth_layout("strip").panels}) == 1  # 1x4


def test_captions_change_pixels_only_in_their_bands():
    images = [flat(value=v) for v in (40, 90, 140, 190)]
    empty = compose_booth(images, "grid", captions=["", "", "", ""], title="2025.05.01")
    texts = ["하나 one", "", "a caption far longer than the panel could ever hold in one line", "x"]
    written = compose_booth(images, "grid", captions=texts, title="2025.05.01")
    geo = booth_layout("grid", captions=True, title=True)
    changed = (empty != written).any(axis=2)
    allowed = np.zeros_like(changed)
    for i, (x0, y0, x1, y1) in enumerate(geo.captions):
        allowed[y0:y1, x0:x1] = True
        assert changed[y0:y1, x0:x1].any() == bool(texts[i])
        # centred with room to spare: a long caption is shrunk and cut, never drawn to the band's edges
        assert not changed[y0:y1, x0:x0 + 2].any() and not changed[y0:y1, x1 - 2:x1].any()
    assert not (changed & ~allowed).any()
    x0, y0, x1, y1 = geo.footer
    assert (empty[y0:y1, x0:x1] != WHITE).any()  # the title is drawn


def test_exactly_four_images_and_other_refusals_are_one_line():
    for n in (0, 3, 5):
        with pytest.raises(ValueError, match=f"exactly 4 images, got {n}"):
            compose_booth([flat()] * n)
    bad = [
        (dict(layout="mosaic"), "unknown booth layout 'mosaic'; choices: strip, grid"),
        (dict(captions=list("abcde")), "at most 4 captions"),
        (dict(panel_width=5000), "panel_width must be an integer in"),
        (dict(gutter=-1), "gutter must be"),
        (dict(background="#12345"), "background must be"),
        (dict(focus=[None]), "focus needs one entry"),
    ]
    for kw, message in bad:
        with pytest.raises(ValueError, match=message) as info:
            compose_booth([flat()] * 4, **kw)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="image 2 must be uint8"):
        compose_booth([flat(), flat().astype(np.float32), flat(), flat()])
    with pytest.raises(ValueError, match=r"image 3 must be an RGB picture"):
        compose_booth([flat(), flat(), np.zeros((10, 10, 2), np.uint8), flat()])


def test_unicode_captions_never_crash(monkeypatch):
    texts = ["네 컷 사진 📸", "مرحبا بالعالم", "tab\there\nnewline\x00nul", "e\u0301\u200b" * 30]
    page = compose_booth([flat()] * 4, "strip", captions=texts, title="인생네컷 · 2025.05.01")
    assert page.shape == (*booth_layout("strip", True, True).size[::-1], 3)
    assert booth.clean_caption("a\nb\x00c") == "a b c"
    assert len(booth.clean_caption("가" * 100)) == booth.CAPTION_CHARS and booth.clean_caption("가" * 100)[-1] == "…"
    # no TrueType font at all: Pillow's own, still no error
    monkeypatch.setattr(booth, "font_files", lambda: ())
    compose_booth([flat()] * 4, "grid", captions=texts, title="인생네컷")


def test_grey_and_rgba_photos_of_any_size_fill_their_panels(load_media):
    photos = [load_media("portrait_grayscale_1ch_01.jpg")[..., 0], load_media("portrait_rgba_microphone_01.png"),
              load_media("bg_street_night_01.jpg"), load_media("lowres_240p_01.jpg")]
    rgba = np.dstack([photos[1], np.full(photos[1].shape[:2], 255, np.uint8)])
    page = compose_booth([photos[0], rgba, photos[2], photos[3]], "grid", border=0)
    geo = booth_layout("grid", border=0)
    photos[0] = np.repeat(photos[0][..., None], 3, axis=2)
    for (x0, y0, x1, y1), photo in zip(geo.panels, photos):
        panel = page[y0:y1, x0:x1]
        assert panel.std() > 10  # a picture, not the background
        assert (panel == booth.fit_panel(photo, x1 - x0, y1 - y0)).all()  # its centre crop, as RGB


def test_focus_keeps_an_off_centre_subject_in_a_narrow_panel(load_media):
    photo = load_media("group_4faces_diverse_skin_01.jpg")  # 1024x484: a portrait panel keeps less than half
    right = (photo.shape[1] - 60, photo.shape[0] / 2)
    centred = booth.fit_panel(photo, 300, 400)
    focused = booth.fit_panel(photo, 300, 400, right)
    edge = booth.fit_panel(photo[:, -photo.shape[0] * 3 // 4:], 300, 400)  # the rightmost crop there is
    assert np.abs(focused.astype(int) - edge).mean() < 1.0
    assert np.abs(centred.astype(int) - edge).mean() > 10
    assert booth.focus_point([(10, 10, 30, 30), (50, 20, 70, 40)]) == (40.0, 25.0)
    assert booth.focus_point([]) is None


def run_studio(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = studio_cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def test_studio_booth_command(media_dir, tmp_path):
    small = media_dir / "images" / "lowres_240p_01.jpg"  # 427x240: the teacher takes about a second
    rc, _, err = run_studio("booth", small, small, small, "--out", tmp_path / "three.png")
    assert rc == 2 and err.strip() == "error: a four-cut page needs exactly 4 photos, got 3"
    rc, _, err = run_studio("booth", small, small, small, tmp_path / "missing.jpg", "--out", tmp_path / "bad.png")
    assert rc == 1 and err.startswith("error: ") and "missing.jpg" in err and not (tmp_path / "bad.png").exists()
    out_png = tmp_path / "booth.png"
    rc, out, err = run_studio("booth", small, small, small, small, "--out", out_png, "--layout", "grid",
                              "--caption", "하나", "둘", "--title", "Toonlab")
    assert rc == 0, err
    from studio.io import load_image

    page = load_image(out_png)
    assert page.shape == (*booth_layout("grid", True, True).size[::-1], 3)
    x0, y0, x1, y1 = booth_layout("grid", True, True).panels[0]
    photo_crop = booth.fit_panel(load_image(small), x1 - x0, y1 - y0)
    assert np.abs(page[y0 + 3:y1 - 3, x0 + 3:x1 - 3].astype(int) - photo_crop[3:-3, 3:-3]).mean() > 5  # stylised


def test_korean_captions_are_drawn_with_a_hangul_font_on_any_machine():
    # The NanumGothic of the koreanize-matplotlib wheel (requirements.txt) stands in where the system has no
    # Hangul font (this CI machine has none): captions are glyphs, not empty boxes.
    assert booth.missing_glyphs("하나 둘 셋 넷 · 인생네컷") == ""
    assert booth.missing_glyphs("하나") != booth.missing_glyphs("하나\U000e0001")  # it can say what is missing
