"""The studio as a user meets it, in a real headless Chromium (issue 16):

- a character fitted in the Characters tab is saved under the name in the box at Save time, and after a page
  reload it is in every tab's character picker and usable through the API at once;
- the Stable Diffusion teacher without a model says why next to the picker, a run with it fails in a moment with a
  short message, and the previous result stays on screen;
- a page reloaded while its video conversion runs shows that conversion's progress, then its result; another
  browser does not see it.

The Webcam tab's readout (rolling fps, people as #0, cleared on Stop): tests/test_ui_webcam.py.

    .venv/bin/python -m pytest -q tests/test_ui_browser.py      (about a minute; needs Debian's chromium)
"""
import shutil
import time

import pytest

gr = pytest.importorskip("gradio")
pytest.importorskip("av")

from gradio_client import Client, handle_file  # noqa: E402

from studio.config import load_config  # noqa: E402
from studio.ui import build_app, launch  # noqa: E402
from tools.screenshot_ui import Browser  # noqa: E402
from tools.webcam_latency import free_port  # noqa: E402

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: `apt-get install -y chromium` (make test installs it when run as root)")
PICKERS = [("Stylize", "#character"), ("Video", "#video-character"), ("Webcam", "#webcam-character"),
           ("Characters", "#character-base"), ("Distill", "#distill-character")]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    cfg = load_config(None, [f"data_dir={data}", "server.host=127.0.0.1", f"server.port={port}",
                             f"sd.base={data / 'no-such-model'}"])
    app = build_app(cfg)
    launch(app, cfg, prevent_thread_lock=True, quiet=True)  # with the page's <head> scripts, as app.py launches
    yield f"http://127.0.0.1:{port}/", data, app
    app.close()


def open_studio(b: Browser, url: str) -> None:
    b.call("Page.enable")
    b.call("Page.navigate", url=url)
    b.wait_for("!!document.querySelector('#stylize-button')", f"the studio at {url}", 60)


def toasts(b: Browser) -> list:
    return b.js("[...document.querySelectorAll('.toast-body, [data-testid=toast-body]')].map(e => e.innerText)")


def text_of(b: Browser, selector: str) -> str:
    return b.js(f"document.querySelector({selector!r})?.innerText || ''")


def test_a_saved_character_is_everywhere_after_a_reload_and_in_the_api(studio, media_dir):
    url, data, _ = studio
    refs = [media_dir / "images" / n for n in ("portrait_dark_skin_02.png", "portrait_medium_dark_skin_01.jpg",
                                               "portrait_glasses_beard_brown_skin_01.jpg")]
    b = Browser(CHROMIUM, 1400, 1000)
    try:
        open_studio(b, url)
        b.tab("Characters")
        b.wait_for("!!document.querySelector('#character-references input[type=file]')", "the Characters tab", 10)
        b.upload("#character-references", refs)
        b.wait_for("document.querySelector('#character-references').innerText.includes('portrait_dark_skin_02')",
                   "the references to upload", 30)
        b.type_into("#character-name textarea", "first")
        b.click("#character-fit")
        try:
            b.wait_for("/[0-9]+ references, [0-9]+ faces/.test(document.querySelector('#character-profile')"
                       ".innerText)", "the fitted profile", 120)
        except TimeoutError:  # say what the page shows instead
            raise AssertionError((text_of(b, "#character-profile"), toasts(b))) from None
        b.type_into("#character-name textarea", "hana")  # renamed after Fit: Save takes the name now in the box
        b.click("#character-save")
        try:
            b.wait_for("document.querySelector('#character-status').innerText.includes('Saved hana') || "
                       "document.querySelectorAll('.toast-body, [data-testid=toast-body]').length > 0", "the save", 60)
            assert not toasts(b), toasts(b)
        except TimeoutError:
            raise AssertionError((text_of(b, "#character-status"), toasts(b),
                                  b.js("document.querySelector('#character-name textarea').value"))) from None
        assert (data / "characters" / "hana").is_dir() and not (data / "characters" / "first").exists()

        open_studio(b, url)  # a reload: the pickers are read from disk again
        for tab, picker in PICKERS:
            b.tab(tab)
            b.wait_for(f"!!document.querySelector('{picker} input')", f"the {tab} tab's picker", 10)
            for attempt in range(3):  # a first click on a just-shown tab's option list sometimes does not take
                try:
                    assert b.pick(picker, "Hana") == "Hana", tab
                    break
                except TimeoutError:
                    pass  # seen on Stylize and Webcam, about one run in three; a user clicks again
            else:
                raise AssertionError(f"{tab}: Hana could not be picked")
    finally:
        b.close()
    photo = media_dir / "images" / "lowres_240p_01.jpg"
    _, _, report = Client(url, verbose=False).predict(image=handle_file(str(photo)), character="hana",
                                                      api_name="/stylize")
    assert "character hana" in report


def test_the_unavailable_sd_teacher_fails_fast_and_keeps_the_last_result(studio, media_dir):
    url, _, _ = studio
    b = Browser(CHROMIUM, 1400, 1000)
    try:
        open_studio(b, url)
        b.upload("#photo", [media_dir / "images" / "lowres_240p_01.jpg"])
        b.wait_for("!!document.querySelector('#photo img')", "the photo to upload", 30)
        b.click("#stylize-button")
        b.wait_for("document.querySelectorAll('#before-after img').length >= 1", "the classic result", 120)
        b.wait_for("document.querySelector('#stylize-report').innerText.includes('classic teacher')", "its report",
                   30)
        shown = b.js("[...document.querySelectorAll('#before-after img')].map(i => i.src).join(' ')")

        assert b.pick("#teacher", "sd") == "sd (unavailable)"
        b.wait_for("document.querySelector('#teacher').innerText.includes('Unavailable')", "the reason by the picker",
                   10)
        reason = text_of(b, "#teacher")
        assert "no-such-model" in reason and len(reason) < 400, reason
        t0 = time.monotonic()
        b.click("#stylize-button")
        b.wait_for("[...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                   ".some(e => e.innerText.includes('no-such-model'))", "the error message", 20)
        assert time.monotonic() - t0 < 10  # no retries against the model hub
        time.sleep(1.0)
        assert b.js("[...document.querySelectorAll('#before-after img')].map(i => i.src).join(' ')") == shown
        assert "classic teacher" in text_of(b, "#stylize-report")
    finally:
        b.close()


def test_four_photos_make_a_four_cut_page_in_the_stylize_tab(studio, media_dir):
    url, data, _ = studio
    photos = [media_dir / "images" / n for n in ("lowres_240p_01.jpg", "portrait_dark_skin_02.png",
                                                 "turned_face_in_car_dim_01.jpg", "partial_face_01.jpg")]
    b = Browser(CHROMIUM, 1400, 1000)
    try:
        open_studio(b, url)
        b.click("#stylize-booth button.label-wrap")
        b.wait_for("!!document.querySelector('#stylize-booth-photos input[type=file]')", "the booth's controls", 10)
        b.upload("#stylize-booth-photos", photos[:3])
        b.wait_for("document.querySelector('#stylize-booth-photos').innerText.includes('turned_face')", "upload", 30)
        b.click("#stylize-booth-button")
        b.wait_for("[...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                   ".some(e => e.innerText.includes('exactly 4 photos'))", "three photos refused", 20)
        b.upload("#stylize-booth-photos", photos[3:])  # the file box adds to what it holds, as a user adds one more
        b.wait_for("document.querySelector('#stylize-booth-photos').innerText.includes('partial_face')", "upload", 30)
        b.js("[...document.querySelectorAll('#stylize-booth-layout label')].find(l => l.innerText.includes('2×2'))"
             ".click()")
        b.type_into("#stylize-booth-captions textarea", "하나\ntwo")
        b.click("#stylize-booth-button")
        b.wait_for("!!document.querySelector('#stylize-booth-page img')", "the four-cut page", 180)
    finally:
        b.close()
    (saved,) = (data / "outputs").glob("*-booth-classic.png")
    from PIL import Image

    w, h = Image.open(saved).size
    assert 0.5 < w / h < 0.9, (w, h)  # the 2x2 page of 3:4 panels (about 0.67), not the 1x4 strip (about 0.37)


def test_a_reloaded_page_shows_its_running_conversion(studio, media_dir):
    url, data, app = studio
    clip = media_dir / "videos" / "stage_performer_lowlight_360p.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    b = Browser(CHROMIUM, 1400, 1000)
    try:
        open_studio(b, url)
        b.tab("Video")
        b.wait_for("!!document.querySelector('#video-file input[type=file]')", "the Video tab", 10)
        b.upload("#video-file", [clip])
        b.wait_for("document.querySelector('#video-file').innerText.includes('stage_performer')", "the upload", 60)
        b.js("[...document.querySelectorAll('#video-path label')].find(l => l.innerText.includes('Classic')).click()")
        b.type_into("#video-frames input", "10")  # the teacher: about half a second per frame here
        b.click("#video-start")
        b.wait_for("document.querySelector('#video-status').innerText.includes('running')", "the job to run", 60)

        open_studio(b, url)  # reloaded while it runs: a new page session, the same browser
        assert app.toonlab_context.jobs.running("video") == 1
        b.tab("Video")
        b.wait_for("document.querySelector('#video-status').innerText.includes('running')",
                   "the running job's progress after the reload", 20)

        other = Browser(CHROMIUM, 1200, 900)  # another browser (its own cookie): not its job
        try:
            open_studio(other, url)
            other.tab("Video")
            time.sleep(2.0)
            assert "running" not in text_of(other, "#video-status")
        finally:
            other.close()

        b.wait_for("document.querySelector('#video-status').innerText.includes('done')", "the job to end", 180)
        b.wait_for("!!document.querySelector('#video-result video')", "the result to play", 30)
    finally:
        b.close()
    assert list((data / "videos").glob("stage_performer*-classic.mp4"))
