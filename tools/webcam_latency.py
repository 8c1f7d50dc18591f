"""Measure the studio's Webcam tab in headless Chromium with a fake camera: frames/s the page receives, the
server's time per frame, and the round trip per frame (the page grabbing a camera frame to the stylised frame
for it loaded in the page).

    .venv/bin/python tools/webcam_latency.py                                   # 640×360 and 1280×720, 20 s each
    .venv/bin/python tools/webcam_latency.py --size 640x360 --seconds 30 --transport-only

For developers (docs/PERFORMANCE.md, "Webcam tab"); prints a table. Starts the studio itself, in this process,
on a free port (so it can read the server's per-frame times), and Debian's `chromium` with a fake camera fed
from a clip in ../shared/data/videos (converted to .y4m in a temporary folder). `--transport-only` also runs
each size with the stylisation replaced by a copy of the frame: Gradio's own cost.

How the round trip is taken: a script added to the page before it loads wraps `HTMLCanvasElement.toDataURL`,
which Gradio's webcam calls to encode each frame it sends (a JPEG), stamps the frame's number into its
bottom-left corner (away from the face, whose warp and strokes would redraw it) (16 black/white squares) and notes the time; when a stylised frame loads in the page, its stamp is read
back, so each output is paired with the very frame it came from (the server keeps only the newest frame that
arrived while it was busy, so most frames sent are never answered). Camera-to-grab (up to a camera frame, 33 ms
at 30 fps) and the display (a screen frame) come on top: glass-to-glass-ish. Runs are meant to be short (the
stamp counts to 4096 frames).

The browser-driving functions here are also what tests/test_ui_webcam.py uses.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.screenshot_ui import Browser  # noqa: E402

CLIP = "face_talking_glasses_vertical_720x1280.mp4"

# Added to the page before it loads. Each frame Gradio's webcam sends is stamped with its number (a strip of
# MARK_BITS black/white squares, MARK_PX wide, at its bottom left: 12 bits of number, 4 of check) just before it is
# encoded; when an output image loads, its stamp is read back. A stamp that does not check (stylised beyond
# reading) is counted, not paired.
MARK_BITS, MARK_PX = 16, 16
INSTRUMENT_JS = """
(() => {
  const BITS = %d, PX = %d;
  const state = {grabs: [], loads: [], unread: 0, sent: {}, seen: new Set()};
  window.__webcam = state;
  const check = (k) => (k ^ (k >> 4) ^ (k >> 8)) & 15;
  const toDataURL = HTMLCanvasElement.prototype.toDataURL;
  HTMLCanvasElement.prototype.toDataURL = function (...args) {
    if (!(args[0] === 'image/jpeg' && args.length === 1 && this.width >= BITS * PX)) return toDataURL.apply(this, args);
    const t0 = performance.now(), k = state.grabs.length %% 4096, code = (k << 4) | check(k);
    const g = this.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);  // Gradio mirrors the camera with a transform; the stamp is not mirrored
    for (let i = 0; i < BITS; i++) {
      g.fillStyle = (code >> (BITS - 1 - i)) & 1 ? '#fff' : '#000';
      g.fillRect(i * PX, this.height - PX, PX, PX);
    }
    const url = toDataURL.apply(this, args);
    state.grabs.push({t0, t1: performance.now(), w: this.width, h: this.height});
    state.sent[k] = url;
    delete state.sent[(k + 4096 - 30) %% 4096];  // the last few, for the test's comparison of sent and received
    return url;
  };
  const canvas = document.createElement('canvas');
  canvas.width = BITS * PX; canvas.height = PX;
  const read = (im) => {
    const g = canvas.getContext('2d', {willReadFrequently: true});
    g.drawImage(im, 0, im.naturalHeight - PX, BITS * PX, PX, 0, 0, BITS * PX, PX);
    const d = g.getImageData(0, 0, BITS * PX, PX).data;
    let code = 0;
    for (let i = 0; i < BITS; i++) {
      const o = ((PX >> 1) * BITS * PX + i * PX + (PX >> 1)) * 4;
      code = (code << 1) | ((d[o] + d[o + 1] + d[o + 2]) / 3 > 127 ? 1 : 0);
    }
    const k = code >> 4;
    return check(k) === (code & 15) ? k : null;
  };
  document.addEventListener('load', (e) => {
    const im = e.target;
    if (im.tagName !== 'IMG' || !im.closest || !im.closest('#webcam-output')) return;
    const t = performance.now(), src = im.currentSrc || im.src;
    // Each output frame has its own file; the page may load one twice (a re-render): count it once.
    if (state.seen.has(src)) return;
    state.seen.add(src);
    const k = read(im);
    if (k === null) { state.unread += 1; return; }
    state.loads.push({t, k, src, w: im.naturalWidth, h: im.naturalHeight});
  }, true);
})();
""" % (MARK_BITS, MARK_PX)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_y4m(src: Path, dst: Path, seconds: float = 3.0, size: tuple = (640, 360), fps: int = 30) -> Path:
    """The first `seconds` of a video as a raw .y4m of `size` (what Chromium's fake camera reads; it loops it),
    centre-cropped to the size's shape first so that nothing is stretched."""
    import av

    w, h = size
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for n, frame in enumerate(inp.decode(video=0)):
            if n >= seconds * fps:
                break
            rgb = frame.to_ndarray(format="rgb24")
            fh, fw = rgb.shape[:2]
            cw, ch = min(fw, round(fh * w / h)), min(fh, round(fw * h / w))
            x, y = (fw - cw) // 2, (fh - ch) // 2
            crop = av.VideoFrame.from_ndarray(rgb[y:y + ch, x:x + cw].copy(), format="rgb24")
            for packet in stream.encode(crop.reformat(w, h, "yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def camera_flags(y4m: Path, deny: bool = False) -> list[str]:
    """Chromium flags for a fake camera that plays `y4m`, with the permission prompt answered yes (or no)."""
    return ["--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream" + ("=deny" if deny else ""),
            f"--use-file-for-fake-video-capture={y4m}"]


def open_webcam_tab(b: Browser, url: str, timeout: float = 60) -> None:
    """Load the studio with the instrumentation, open the Webcam tab and give it the camera (not recording)."""
    b.call("Page.enable")
    b.call("Page.addScriptToEvaluateOnNewDocument", source=INSTRUMENT_JS)
    b.call("Page.navigate", url=url)
    b.wait_for("!!document.querySelector('#stylize-button')", f"the studio at {url}", timeout)
    b.js("[...document.querySelectorAll('button[role=tab]')].find(e => e.innerText.trim() === 'Webcam').click()")
    b.wait_for("!!document.querySelector('#webcam-input')", "the Webcam tab", 10)
    # A click that lands while the tab is still being laid out and wired asks for no camera (about half the runs
    # on a 2-core AVX2 machine): as a user would, click again until the page has asked the browser for the camera.
    for attempt in range(4):
        b.click("#webcam-input [title='grant webcam access'] button")
        try:
            b.wait_for("(window.__toonlabCamera?.asked || 0) > 0", "the page to ask for the camera", 3)
            return
        except TimeoutError:
            if attempt == 3:
                raise


def start_recording(b: Browser, timeout: float = 20) -> None:
    b.wait_for("(() => { const v = document.querySelector('#webcam-input video'); "
               "return !!v && v.videoWidth > 0; })()", "the camera to show", timeout)
    b.wait_for("!!document.querySelector('#webcam-input button.capture-button')", "the record button", timeout)
    b.click("#webcam-input button.capture-button")


def page_state(b: Browser) -> dict:
    return b.js("({grabs: window.__webcam.grabs, loads: window.__webcam.loads.map(({src, ...x}) => x), "
                "unread: window.__webcam.unread, now: performance.now()})")


def sent_vs_received(b: Browser) -> dict:
    """For the latest output frame: the mean absolute difference (0-255, grey, 96 px wide, above the stamp) from
    the very frame that was sent for it, and from the frame sent just before that one (how much a frame of
    motion changes the picture)."""
    return b.js("""(async () => {
      const st = window.__webcam, last = st.loads[st.loads.length - 1];
      if (!last) return null;
      const grey = async (src) => {
        const im = new Image(); im.src = src; await im.decode();
        const c = document.createElement('canvas');
        c.width = 96; c.height = Math.round(96 * im.naturalHeight / im.naturalWidth);
        const g = c.getContext('2d'); g.drawImage(im, 0, 0, c.width, c.height);
        const d = g.getImageData(0, 0, c.width, c.height - 8).data; const v = [];
        for (let i = 0; i < d.length; i += 4) v.push(0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]);
        return v;
      };
      const mad = (a, b) => a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0) / a.length;
      const out = await grey(last.src), res = {k: last.k};
      if (st.sent[last.k]) res.same = mad(out, await grey(st.sent[last.k]));
      if (st.sent[last.k - 1]) res.motion = mad(await grey(st.sent[last.k]), await grey(st.sent[last.k - 1]));
      return res;
    })()""")


def summarize(state: dict, since: float = 0.0) -> dict:
    """Frames/s received, the round trip per frame (its grab to its stylised frame loaded in the page) and the
    page's grab+stamp+encode time, over the output frames loaded after `since` (performance.now() ms)."""
    grabs, loads = state["grabs"], [x for x in state["loads"] if x["t"] > since]
    trips = [x["t"] - grabs[x["k"]]["t0"] for x in loads if x["k"] < len(grabs)]
    encode = [g["t1"] - g["t0"] for g in grabs if g["t0"] > since]
    span = (loads[-1]["t"] - loads[0]["t"]) / 1000.0 if len(loads) > 1 else 0.0
    sent = sum(1 for g in grabs if g["t0"] > since)
    q = statistics.quantiles(trips, n=10) if len(trips) >= 2 else [float("nan")] * 9
    return {"frames": len(loads), "sent": sent, "unread": state["unread"],
            "fps": (len(loads) - 1) / span if span > 0 else 0.0,
            "trip_ms": statistics.median(trips) if trips else float("nan"), "trip_p90_ms": q[8],
            "encode_ms": statistics.median(encode) if encode else float("nan"),
            "size": (grabs[-1]["w"], grabs[-1]["h"]) if grabs else None}


class CopyStream:
    """Stands in for realtime.stream.Stream with `--transport-only`: the frame back unchanged."""

    def __init__(self):
        self.times = []

    def process(self, frame):
        from types import SimpleNamespace

        self.times.append(time.perf_counter())
        return SimpleNamespace(image=frame, tracks=[], timings={}, index=len(self.times) - 1)

    def update(self, **kw):
        pass

    def stats(self):
        t = [x for x in self.times if x > self.times[-1] - 2.0] if self.times else []
        return {"fps": (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0, "stages": {}}

    def stop(self):
        pass


def measure(url: str, app, chromium: str, y4m: Path, seconds: float, screenshot: Path | None = None) -> dict:
    """Stream `seconds` (after the first 5 frames) and return the page's and the server's numbers; save a
    screenshot of the page at the end when asked."""
    b = Browser(chromium, 1400, 1000, camera_flags(y4m))
    try:
        open_webcam_tab(b, url)
        start_recording(b)
        b.wait_for("window.__webcam.loads.length >= 5", "the first stylised frames", 120)
        since = b.js("performance.now()")
        ctx = app.toonlab_context
        for s in ctx.webcam._sessions.values():
            s.server_ms.clear()
        time.sleep(seconds)
        state = page_state(b)
        pairing = sent_vs_received(b)
        readout = b.js("document.querySelector('#webcam-readout').innerText")
        if screenshot:
            b.screenshot(screenshot, 1400)
        sessions = list(ctx.webcam._sessions.values())
        server = sessions[0] if sessions else None
        out = summarize(state, since)
        out.update(server_ms=statistics.median(server.server_ms) if server and server.server_ms else float("nan"),
                   stages=server.stream.stats().get("stages", {}) if server else {}, pairing=pairing,
                   readout=readout.strip().splitlines()[-1] if readout.strip() else "")
        return out
    finally:
        b.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", action="append", help="camera size WxH, repeatable (default 640x360 and 1280x720)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds measured per run, after the warm-up")
    ap.add_argument("--clip", type=Path, help=f"camera clip (default ../shared/data/videos/{CLIP})")
    ap.add_argument("--transport-only", action="store_true", help="also run with the frame copied, not stylised")
    ap.add_argument("--stream-every", type=float, action="append",
                    help="the page's frame interval in s, repeatable (default: the tab's STREAM_EVERY)")
    ap.add_argument("--screenshot", type=Path, help="save a PNG of the page at the end of the first run")
    ap.add_argument("--json", action="store_true", help="print one JSON object per run as well")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args(argv)
    clip = args.clip or Path(os.environ.get("TEST_MEDIA_DIR", REPO.parent / "shared" / "data")) / "videos" / CLIP
    if not Path(args.chromium).exists():
        print(f"error: no chromium at {args.chromium}; install it with `apt-get install -y chromium`",
              file=sys.stderr)
        return 2
    if not clip.is_file():
        print(f"error: no such clip: {clip}", file=sys.stderr)
        return 2
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.size or ["640x360", "1280x720"])]

    from realtime import live
    from studio.config import load_config
    from studio.ui import build_app, launch
    from studio.ui.tabs import webcam

    tmp = Path(tempfile.mkdtemp(prefix="toonlab-webcam-"))
    rows, real_open, real_every = [], live.open_stream, webcam.STREAM_EVERY
    try:
        for every in args.stream_every or [real_every]:
            webcam.STREAM_EVERY = every  # read when the tab's events are wired, in build_app
            port = free_port()
            cfg = load_config(None, [f"data_dir={tmp / 'data'}", "server.host=127.0.0.1", f"server.port={port}"])
            app = build_app(cfg)
            launch(app, cfg, prevent_thread_lock=True, quiet=True)
            try:
                for size in sizes:
                    y4m = tmp / f"camera-{size[0]}x{size[1]}.y4m"
                    if not y4m.exists():
                        make_y4m(clip, y4m, 4.0, size)
                    for route in (["stylised", "copy"] if args.transport_only else ["stylised"]):
                        if route == "copy":
                            live.open_stream = lambda cfg, character, factors: CopyStream()
                        try:
                            r = measure(f"http://127.0.0.1:{port}/", app, args.chromium, y4m, args.seconds,
                                        None if rows else args.screenshot)
                        finally:
                            live.open_stream = real_open
                            app.toonlab_context.webcam.close_all()
                        r.update(route=route, camera=f"{size[0]}x{size[1]}", stream_every=every)
                        rows.append(r)
                        if args.json:
                            print(json.dumps(r), flush=True)
            finally:
                app.close()
    finally:
        webcam.STREAM_EVERY = real_every
        shutil.rmtree(tmp, ignore_errors=True)
    print("| camera | stream_every | frames/s received | round trip median | p90 | server ms/frame "
          "| stages (median ms) | page grab+encode |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages"].items() if v is not None) or "-"
        label = r["camera"] + (" (copy)" if r["route"] == "copy" else "")
        print(f"| {label} | {r['stream_every']:g} s | {r['fps']:.1f} | {r['trip_ms']:.0f} ms "
              f"| {r['trip_p90_ms']:.0f} ms | {r['server_ms']:.0f} | {stages} | {r['encode_ms']:.0f} ms |")
    for r in rows:
        p = r["pairing"] or {}
        print(f"{r['camera']} {r['route']} every {r['stream_every']:g} s: {r['sent']} frames sent, "
              f"{r['frames']} answered, {r['unread']} stamps unreadable; last frame vs the frame sent for it: "
              f"{p.get('same', float('nan')):.1f} grey levels (a frame of motion: {p.get('motion', float('nan')):.1f}); readout: {r['readout']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
