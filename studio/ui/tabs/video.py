"""Video tab: upload a video, pick the character, the path (a student engine, or the classic teacher: slow), the
line/texture/color/warp factors and optionally a character per tracked person (TRACK=NAME, the ids from a first
run's report), convert it in the background with a progress bar and Cancel, then play and download the result
with a short report (frames, fps achieved, audio kept, track ids seen).

The conversion is `realtime.video.convert_video` in a `studio.jobs.Job` (one per session, two at a time over all
sessions; Cancel reaches only the session's own); the output goes to `<data_dir>/videos/<name>-<character>.mp4`
(sanitised, numbered when taken), written under a temporary name and renamed when complete. Driven from gradio_client:

    Client(url).predict(video=handle_file("clip.mp4"), character="classic", path="onnxruntime", frames=8,
                        api_name="/convert_video")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import gradio as gr

from realtime.stream import Stream, StreamConfig
from realtime.video import VIDEO_SUFFIXES, VideoCancelled, convert_video
from realtime.video import parse_assignments as parse_cast_text

from ...characters import list_characters, load_character, resolve_factors
from ...checks import FACTOR, FRAMES
from ...io import being_written, safe_name
from ...jobs import Cancelled, Job
from ...types import FACTORS
from ..api import Param, character_param, document, factor, integer
from ..components import character_picker, number, slider
from . import cancel_job, follow, inputs_for, refuse, running_job, start_job

TITLE = "Video"
MAX_VIDEO_MB = 500  # the tab's own bound; the server's upload limit (server.max_upload_mb, 500) applies first
PATHS = [("Student · fastest engine here (fast)", "auto"), ("Student · onnxruntime, float", "onnxruntime"),
         ("Student · torch", "torch"), ("Classic teacher (slow: about a second per frame)", "classic")]


@dataclass
class VideoUI:
    video: gr.File
    character: gr.Dropdown
    path: gr.Radio
    factors: dict  # factor name -> slider
    frames: gr.Number
    assign: gr.Textbox
    contours: gr.Checkbox
    start: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    result: gr.Video
    download: gr.File
    report: gr.Markdown


def render(ctx) -> VideoUI:
    chars = list_characters(ctx.cfg)
    with gr.Row(equal_height=False):
        with gr.Column():
            video = gr.File(label=f"Video (up to {MAX_VIDEO_MB} MB)", file_count="single",
                            file_types=list(VIDEO_SUFFIXES), elem_id="video-file")
            character = character_picker(ctx, label="Character", elem_id="video-character")
            path = gr.Radio(PATHS, value="auto", label="Path", elem_id="video-path",
                            info="A student draws each frame in milliseconds; the classic teacher is the quality "
                                 "path, seconds per frame")
            start_at = _defaults(ctx.cfg, chars)  # the default character's own factors
            factors = {name: slider(0.0, 1.0, value=start_at[name], step=0.05, label=name.capitalize())
                       for name in FACTORS}
            frames = number(0, precision=0, minimum=0, label="Frame limit (a preview; 0 = the whole video)",
                            elem_id="video-frames")
            assign = gr.Textbox("", label="Characters per person (optional)", placeholder="0=noir, 2=pastel",
                                info="TRACK=CHARACTER, comma-separated. The track ids are in the report of a "
                                     "first run; the same video and settings give the same ids.")
            contours = gr.Checkbox(True, label="Contour lines",
                                   info="The student draws the teacher's outlines over each frame (about a quarter "
                                        "slower on 2 cores, and the lines shimmer a little); off: face strokes only")
            with gr.Row():
                start = gr.Button("Convert", variant="primary", elem_id="video-start")
                cancel = gr.Button("Cancel")
            status = gr.Markdown(label="Status", elem_id="video-status")
        with gr.Column():
            result = gr.Video(label="Result", interactive=False, elem_id="video-result")
            download = gr.File(label="Download", interactive=False)
            report = gr.Markdown(label="Report")
    return VideoUI(video, character, path, factors, frames, assign, contours, start, cancel, status, result, download,
                   report)


def _defaults(cfg, chars) -> dict:
    default = next((c for c in chars if c.name == cfg.default_character), chars[0] if chars else None)
    if default is None:
        return {name: 0.5 for name in FACTORS}
    return resolve_factors(default, None, None, None, None)


def check_upload(video: Optional[str]) -> Path:
    """The uploaded file, refused with a one-line gr.Error when missing, too large or not a video."""
    if not video:
        raise refuse("Upload a video first.")
    src = Path(video)
    if src.suffix.lower() not in VIDEO_SUFFIXES:
        raise refuse(f"{src.name} is not a video file (expected {', '.join(VIDEO_SUFFIXES)}).")
    if not src.is_file():
        raise refuse("The upload did not arrive; try again.")
    if src.stat().st_size > MAX_VIDEO_MB * 1024 * 1024:
        raise refuse(f"{src.name} is larger than {MAX_VIDEO_MB} MB.")
    try:
        import av

        with av.open(str(src)) as container:
            if not container.streams.video:
                raise refuse(f"{src.name} has no video stream.")
    except av.FFmpegError:
        raise refuse(f"{src.name} is not a readable video.") from None
    return src


def output_path(cfg, src: Path, character: str) -> Path:
    """`<data_dir>/videos/<stem>-<character>.mp4`, sanitised, numbered -2, -3, … rather than overwrite."""
    folder = cfg.resolve(cfg.data_dir) / "videos"
    try:
        stem = safe_name(f"{src.stem}-{character}")
    except ValueError:
        stem = "video"
    out, i = folder / f"{stem}.mp4", 1
    while out.exists() or being_written(out):
        i += 1
        out = folder / f"{stem}-{i}.mp4"
    return out


def report_text(r) -> str:
    path = f"{r.engine} on {r.device}" if r.engine else f"the {r.teacher} teacher"
    tracks = ", ".join(map(str, r.tracks)) if r.tracks else "none"
    return (f"**{r.frames} frames** · {r.fps:.2f} frames/s achieved (input {r.input_fps:g} fps) · "
            f"{r.width}×{r.height} · {r.seconds:.1f} s\n\n"
            f"Audio kept: {'yes' if r.audio else 'no (the input has none)'} · Track ids seen: {tracks} · "
            f"Character: {r.character}"
            + (" · " + ", ".join(f"track {k} as {v}" for k, v in r.assign.items()) if r.assign else "")
            + f" · Path: {path}"
            + "".join(f"\n\n{name} drawn by {origin}" for name, origin in r.students.items()))


def parse_assignments(text: Optional[str], cfg) -> dict[int, str]:
    """"0=noir, 2=pastel" -> {0: "noir", 2: "pastel"} (realtime.video.parse_assignments); a one-line gr.Error for a
    malformed entry or an unknown character."""
    try:
        return parse_cast_text(text, [c.name for c in list_characters(cfg)])
    except ValueError as exc:
        raise refuse(str(exc)) from None


def start_video_job(cfg, src: Path, dst: Path, character: str, path: str, factors: dict,
                    frames: Optional[int], assign: Optional[dict] = None, contours: bool = True):
    """Convert in a background Job: progress is frames done / total; cancel stops between frames. The job's value
    is the VideoReport."""
    def work(report, should_stop, log):
        log("loading the " + ("teacher" if path == "classic" else "student"))
        teacher = "classic" if path == "classic" else None
        stream = Stream(cfg, StreamConfig(character=character, engine=path if not teacher else "auto",
                                          teacher=teacher, assign=dict(assign or {}), contours=contours,
                                          **factors)).prepare()

        def on_frame(done, total):
            if total:
                report(done, total, {}, "frames")
            else:
                log(f"frames {done}")

        try:
            report = convert_video(src, dst, stream, max_frames=frames, progress=False, on_frame=on_frame,
                                   should_stop=should_stop)
        except VideoCancelled as exc:
            raise Cancelled(str(exc)) from None
        return report, f"saved {dst.name}"

    return Job(work, int(frames or 0), "video-job").start()


def listen(ctx, ui: VideoUI) -> None:
    def run(video, character, path, line, texture, color, warp, frames, assign, contours=True,
            request: gr.Request = None, progress=gr.Progress()):
        src = check_upload(video)
        if path not in {value for _, value in PATHS}:
            raise refuse(f"Unknown path {path!r}.")
        try:  # studio.checks: the rules of the CLI and of /stylize, whatever the client sent
            factors = {k: FACTOR.check(k, v, optional=True)  # None (an API client left it out): the character's
                       for k, v in dict(line=line, texture=texture, color=color, warp=warp).items()}
            limit = FRAMES.check("frames", frames or 0)
            load_character(character, ctx.cfg)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        dst = output_path(ctx.cfg, src, character)
        cast = parse_assignments(assign, ctx.cfg)
        job = start_job(ctx, request, "video", lambda: start_video_job(ctx.cfg, src, dst, character, path, factors,
                                                                      limit or None, cast, bool(contours)))
        yield from shown(job, progress)

    def shown(job, progress):
        for line_, s in follow(job, progress, every=0.5):
            yield line_, gr.skip(), gr.skip(), gr.skip()
        if s.status == "done":
            out = job.value.output
            yield f"**done** · {s.message}", out, out, report_text(job.value)

    def reopened(request: gr.Request = None, progress=gr.Progress()):
        """A page (re)loaded while this browser's conversion runs: its progress, then its result."""
        job = running_job(ctx, request, "video")
        if job is None:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from shown(job, progress)

    ctx.on_load.append((reopened, [ui.status, ui.result, ui.download, ui.report]))

    # One progress bar, on the status line (gradio draws one on every output otherwise).
    ui.start.click(run, inputs_for(run, ui), [ui.status, ui.result, ui.download, ui.report], api_name="convert_video",
                   show_progress_on=ui.status)
    document(ctx, "/convert_video",
             video=Param("filepath", f"the video file ({', '.join(VIDEO_SUFFIXES)}; up to {MAX_VIDEO_MB} MB): a local "
                         "path through gradio_client.handle_file; its audio is kept"),
             character=character_param(ctx.cfg.default_character), **{name: factor(name) for name in FACTORS},
             path=Param("str", "what draws the frames: auto (the fastest student engine here), onnxruntime, torch, "
                        "or classic (the teacher: about a second per frame)", "auto"),
             frames=integer("convert only the first N frames (a preview); 0: the whole video", 0),
             assign=Param("str", "characters per person: TRACK=CHARACTER, comma-separated (the track ids are in a "
                          "first run's report), e.g. '0=noir, 2=pastel'", ""),
             contours=Param("bool", "the student path draws the teacher's contour lines (slower)", True))

    def cancel(request: gr.Request = None):
        return cancel_job(ctx, request, "video", "Stopping after the current frame; nothing is written.")

    ui.cancel.click(cancel, None, ui.status, api_name="cancel_video")
