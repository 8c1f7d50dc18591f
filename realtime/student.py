"""A character's distilled student on one photo or video frame: the realtime path's per-frame step.

    stylize = StudentStylizer(cfg, "classic", engine="onnxruntime", line=0.6)
    faces = face_backend.detect(frame)               # RGB uint8
    out = stylize(frame, faces)                      # faces warped toward the character, then the student

The face warp is geometry, done here from the face landmarks; the student draws the style from the line,
texture and colour factors (studio.models.STUDENT_FACTORS); the face strokes (eyes, brows, lips, nose) are
drawn from the warped landmarks exactly as the teacher draws them, weighted by the line factor, and so are the
contour lines, by the teacher's own line function on the warped frame (what each adds and costs:
docs/PERFORMANCE.md, "Ink in the realtime path"). `python -m studio stylize --engine` and `python -m realtime.video`
both go through `stylize_frame`, so a photo and a video frame are stylised alike.
"""
from __future__ import annotations

import functools
import weakref
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from studio.characters import load_character, resolve_factors
from studio.color import hex_to_rgb, image_scale
from studio.compose import accents_box, eye_accents, face_region, feather, lip_tint
from studio.models import STUDENT_FACTORS
from studio.perception.frame import find_frame
from studio.pipeline import check_image
from studio.stylize.cartoonizer import (BACKGROUND_MIN_LENGTH, HAIR_QUIET, OUTLINE_ALPHA, PERSON_MIN_LENGTH, abstract,
                                        ink_halvings, ink_lines, ink_over)
from studio.stylize.face_ink import face_box, face_ink
from studio.stylize.face_paint import FACE_SIZE, FACE_TEXTURE
from studio.stylize.face_warp import warp_field

from .engines import load_engine
from .guided import WORK_SIDE, flatten, guided_upsample, to_work_size


def student_folder(cfg, character: str, given: Optional[str] = None) -> Path:
    """The character's student: `given`, else the user's own <data_dir>/students/<name>/ (trained in the Distill tab
    or with training.distill), else the shipped students/<name>/. The user's wins: they trained it for a reason."""
    from studio.io import safe_name

    candidates = [Path(given)] if given else [cfg.resolve(cfg.data_dir) / "students" / safe_name(character),
                                              cfg.resolve("students") / safe_name(character)]
    for c in candidates:
        if (c / "config.json").is_file() and (c / "model.safetensors").is_file():
            return c
    if given:
        raise ValueError(f"{given} is not a student folder (it needs config.json and model.safetensors)")
    raise ValueError(f"{character!r} has no realtime student yet: train one in the Distill tab (or use the "
                     "classic teacher path, which needs none)")


def student_origin(cfg, folder: Path) -> str:
    """Which student a folder is, in words for a report: "shipped", "yours (<data_dir>/students/...)" or its path."""
    folder = Path(folder).resolve()
    if folder.parent == cfg.resolve("students").resolve():
        return "the shipped student"
    if folder.parent == (cfg.resolve(cfg.data_dir) / "students").resolve():
        return f"your student ({folder.name}, trained {_trained_on(folder)})"
    return f"the student in {folder}"


def _trained_on(folder: Path) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime((folder / "model.safetensors").stat().st_mtime))


def contour_ink(image: np.ndarray, faces: Sequence, line: float, weight: float) -> np.ndarray:
    """Ink alpha (H, W) for the contours of an RGB uint8 frame: the teacher's own line function
    (studio.stylize.cartoonizer.ink_lines) with its background settings (only long contours), the faces kept
    quiet (only strong edges there) and their insides left to the face strokes, as the teacher does. The teacher
    also knows skin and hair from its segmentation; this step has only the landmarks (and the person's outline,
    `outline_ink`).

    A large frame's lines are placed where ink_lines places them, at half its size (`ink_halvings`): the frame is
    halved and the face masks drawn there once, and only the alpha comes back to the full size (at 1080p the masks
    at full size and their halving cost 20 ms of the 60)."""
    small, small_faces = ink_frame(image, faces)
    return _full_size(_contours(small, small_faces, line, weight), image.shape)


def ink_frame(image: np.ndarray, faces: Sequence) -> tuple[np.ndarray, list]:
    """The frame where its lines are placed (halved by the pyramid steps ink_lines takes, `ink_halvings`) and the
    faces scaled to it."""
    h, w = image.shape[:2]
    small = image
    for _ in range(ink_halvings(image.shape)):
        small = cv2.pyrDown(small)
    if small is image:
        return image, list(faces)
    return small, [f.scaled(small.shape[1] / w, small.shape[0] / h) for f in faces]


PERSON_LINES = 0.7  # the alpha of a person's own (PERSON_MIN_LENGTH) contours within their silhouette


def _contours(small: np.ndarray, faces: Sequence, line: float, weight: float,
              person: Optional[Callable[[], Optional[np.ndarray]]] = None, own: Optional[float] = None,
              hair: Optional[Callable[[], Optional[tuple[np.ndarray, np.ndarray]]]] = None) -> np.ndarray:
    """`contour_ink` at the ink's size, `line` the background's line factor; within the mask `person` gives (None:
    no one; `person_mask`) the person's own lines as the teacher inks its person layer: at the person's line factor
    `own` (None: `line`), PERSON_MIN_LENGTH long, the faces and skin quiet, and drawn at PERSON_LINES; outside it the
    background's, as the teacher inks its background layer (ink_lines' region). The hair is quiet too, at the
    teacher's HAIR_QUIET, where `hair` gives it (`find_hair`: its mask at any size; None: none found). `person` and
    `hair` are called once the gradients are measured, so a pool can segment and find the hair meanwhile."""
    region = None
    if person is not None:  # the silhouette's own edge is the outline's
        region = (functools.cache(lambda: _eroded(person())), PERSON_MIN_LENGTH, line if own is None else own)
    if not faces:
        alpha = ink_lines(small, line, weight, min_length=BACKGROUND_MIN_LENGTH, sample=4, region=region)
    else:
        quiet, skin = face_region(small.shape, faces), skin_quiet(small, faces)
        quiet = quiet if skin is None else cv2.max(quiet, skin)
        if hair is not None:
            quiet = functools.partial(_hair_quiet, quiet, hair)
        alpha = ink_lines(small, line, weight, quiet=quiet, min_length=BACKGROUND_MIN_LENGTH, sample=4, region=region)
        alpha = cv2.multiply(alpha, cv2.subtract(1.0, face_region(small.shape, faces, shrink=0.88)))
    mask = None if region is None else region[0]()
    return alpha if mask is None else cv2.multiply(alpha, cv2.addWeighted(mask, PERSON_LINES - 1.0, mask, 0, 1))


def _hair_quiet(quiet: np.ndarray, hair: Callable[[], Optional[tuple[np.ndarray, np.ndarray]]]) -> np.ndarray:
    """The contours' `quiet` with the hair `hair` gives (`find_hair`; None: none) quiet at HAIR_QUIET, at `quiet`'s
    size."""
    found = hair()
    if found is None:
        return quiet
    mask = found[0]
    h, w = quiet.shape[:2]
    mask = mask if mask.shape[:2] == (h, w) else cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.max(quiet, cv2.multiply(mask, HAIR_QUIET))


def _eroded(mask: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if mask is None else cv2.erode(mask, np.ones((5, 5), np.uint8))


def _full_size(alpha: np.ndarray, shape) -> np.ndarray:
    h, w = shape[:2]
    return alpha if alpha.shape[:2] == (h, w) else cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)


OUTLINE_REFINE_SIDE = 320  # px: the person mask's edge is refined this large for the outline (segment_person)


def person_mask(small: np.ndarray) -> Optional[np.ndarray]:
    """The people in `small` (a frame where its lines are placed, `ink_frame`): mediapipe's selfie segmentation
    (studio.perception.segment_person, its edge refined at OUTLINE_REFINE_SIDE px), None where no one is found."""
    from studio.perception import segment_person

    mask = segment_person(small, refine_side=OUTLINE_REFINE_SIDE)
    return mask if float(mask.max()) > 0.5 else None


def outline_ink(small: np.ndarray, line: float, weight: float,
                mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """Ink alpha at `small`'s size for the silhouette of the people in it (`person_mask`, or the `mask` given),
    drawn as the teacher draws it (studio.stylize.cartoonizer.mask_outline at OUTLINE_ALPHA, over everything else);
    None where no one is found, as the teacher draws none. The outline is a large part of the look: on the
    held-out portraits it brings the realtime step 0.9 (classic), 0.3 (pastel) and 1.5 dB (noir) closer to the
    teacher (docs/PERFORMANCE.md, "The person's outline"). Within it the contours are the person's own
    (`contour_ink`: shorter lines than the background's, drawn lighter, as the teacher inks a person apart from its
    background; 0.35 dB closer on the held-out photos, 0.5 on a second set)."""
    from studio.stylize.cartoonizer import mask_outline

    mask = person_mask(small) if mask is None else mask
    return None if mask is None else cv2.multiply(mask_outline(mask, line, weight, image=small), OUTLINE_ALPHA)


WARP_ACROSS = 80  # points at most across a face's warp spline (studio.stylize.face_warp.warp_field's `across`)
UPSAMPLE = ("linear", "guided")  # how a frame stylised at the working size comes back to its own size


def stylize_frame(engine, image: np.ndarray, faces: Sequence, geometry, warp: float,
                  factors: np.ndarray, ink: Optional[tuple] = None, contours: float = 0.0,
                  pool: Optional[Executor] = None, work_side: Optional[int] = WORK_SIDE,
                  upsample: str = "linear", flat: bool = True, outline: bool = False,
                  detail: bool = False, skin=None) -> np.ndarray:
    """RGB uint8 (H, W, 3) in, the student's RGB uint8 out: faces warped toward `geometry` by `warp`, then the
    engine with `factors` ((1, 3), ordered as STUDENT_FACTORS), then, with `ink` = (line, weight, rgb), the
    teacher's own ink drawn over it: the contours of the warped frame at line factor `contours` (0: none;
    `contour_ink`) and the face strokes (eyes, brows, lips, nose; studio.stylize.face_ink) from the
    warped landmarks. Thin lines are what a 1/4-resolution student only blurs (docs/PERFORMANCE.md, "Student
    recipe"); the teacher draws them exactly and cheaply, so they are drawn, not learned.

    A frame larger than `work_side` (None: any size) is stylised at that long side (realtime.guided) and brought back
    to its own size by a bilinear resize (`upsample="linear"`), or by a guided filter with the frame as the guide
    (`"guided"`: 0.15 dB closer to the teacher at 1024 px for 28 ms more per 1080p frame; docs/PERFORMANCE.md,
    "Student at a working size"). The network costs what it costs at the working size. With `flat` (the default)
    the network's output is flattened there first, by the texture factor (realtime.guided.flatten: as flat as the
    teacher's cels and closer to them, for 3-5 ms); `flat=False` gives the network's own output, for measuring.

    With `detail` each face oval's detail finer than the student places (two of its blocks at the working size) is
    the photo's, painted as the teacher paints a face (`face_details`, `add_face_details`): the faces at the back of
    a group keep their eyes, glasses and smiles. Computed on the photo while the network runs.

    With `skin` (the character: studio.characters.Character) each wide enough face's skin in the network's output is
    brought toward the lightness the teacher gives it (`lift_skin`) and the people's hair (`find_hair`) is shaded as
    the teacher shades it (`shade_hair`) and kept quiet in the contours, within the people's mask where `outline`
    segmented them (no hair without it); and each face's irises and lips are painted at full size as the teacher
    paints them (`face_accents`), after the faces' detail.

    A photo's own frame (a thin border of one colour all round it, studio.perception.find_frame) is kept flat round
    the photo stepped within it, as the studio keeps it.

    With `outline` (and faces in the frame) the people are segmented; with `ink` too they are inked as the teacher
    inks them apart from the background: their silhouette round their segmentation, and within it shorter contours
    (`outline_ink`).

    The ink needs only the warped frame, not the network's output: with a `pool` the people's segmentation (which
    the contours wait for), the hair's mask (the contours wait for it once their gradients are measured), and then
    the engine, the flattening, the skin's lift and the hair's shading (`_painted`), the face strokes and the faces'
    detail run in its thread while the caller's draws the contours and the silhouette (onnxruntime, mediapipe and
    OpenCV release the GIL). The two threads' shares of a 1080p close-up are then about even (~120 ms against ~100;
    with the strokes and the detail on the caller's, ~85 against ~135)."""
    if upsample not in UPSAMPLE:
        raise ValueError(f"upsample must be one of {UPSAMPLE}, not {upsample!r}")
    frame = find_frame(image)
    if frame is not None:  # the photo's own border, kept flat round it as the teacher keeps it (studio.pipeline)
        box = frame.inner(image.shape)
        return frame.around(stylize_frame(engine, np.ascontiguousarray(image[box]), [f.cropped(box) for f in faces],
                                          geometry, warp, factors, ink, contours, pool, work_side, upsample, flat,
                                          outline, detail, skin), image.shape)
    field = warp_field(image.shape, faces, geometry, warp, across=WARP_ACROSS)
    warped = field.apply(image)
    small = to_work_size(warped, work_side) if work_side else warped
    moved = field.move_faces(faces) if warp > 0 and faces else faces
    segment = outline and bool(faces)  # the people's mask: their outline, where their skin is lifted and hair shaded
    silhouette = segment and ink is not None and ink[0] > 0
    lined = ink is not None and (contours > 0 or silhouette)
    mask = None  # with `segment`, a function giving the people's mask (or None: no one found)
    people = None
    if lined or segment:
        small_ink, small_faces = ink_frame(warped, moved)
        if segment:  # in the pool before the network: the contours wait for it
            mask = pool.submit(person_mask, small_ink).result if pool is not None else \
                functools.cache(functools.partial(person_mask, small_ink))
    x = (small.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    work = None  # the faces at the working size, where the skin is lifted and the hair shaded
    if skin is not None and moved:
        work = moved if small is warped else \
            [f.scaled(small.shape[1] / warped.shape[1], small.shape[0] / warped.shape[0]) for f in moved]
    hair = None  # with the people's mask and `skin`, a function giving their hair's mask at the working size
    if mask is not None and work:  # in the pool after the segmentation: the contours keep the hair quiet
        find = functools.partial(find_hair, small, work, mask)
        hair = pool.submit(find).result if pool is not None else functools.cache(find)
    paint = (engine, x, factors, small, flat, work, skin, mask, hair)
    running = pool.submit(_painted, *paint) if pool is not None else None
    strokes = None  # the face strokes, each in its face's box
    if ink is not None and faces and ink[0] > 0:
        run = functools.partial(_face_strokes, warped, moved, ink[0], ink[1])
        strokes = pool.submit(run).result if pool is not None else run
    details = None  # the photo's part of the faces' fine detail
    if detail and moved:
        block = DETAIL_BLOCKS * engine.down * max(warped.shape[:2]) / max(small.shape[:2])
        run = functools.partial(face_details, warped, moved, float(factors[0, STUDENT_FACTORS.index("texture")]),
                                block)
        details = pool.submit(run).result if pool is not None else run
    layers = []  # (where, alpha): the whole frame (None) or a face's box
    if lined:
        alpha = _contours(small_ink, small_faces, contours, ink[1], mask, ink[0], hair) if contours > 0 else None
        people = mask() if mask is not None else None
        if people is not None:
            edge = outline_ink(small_ink, ink[0], ink[1], people)
            alpha = edge if alpha is None else cv2.max(alpha, edge)
        if alpha is not None:
            layers.append((None, _full_size(alpha, warped.shape)))
    layers += strokes() if strokes is not None else []
    details = details() if details is not None else []
    y = running.result() if running is not None else _painted(*paint)
    if small is not warped:  # back to the frame's size
        y = guided_upsample(warped, small, y) if upsample == "guided" else \
            cv2.resize(y, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    if details:
        y = add_face_details(y, details, block)
    if skin is not None and moved:  # after the photo's detail, which holds the photo's irises and lips
        y = face_accents(y, moved, skin, float(factors[0, STUDENT_FACTORS.index("color")]))
    return ink_layers(y, layers, ink[2]) if layers else y


def ink_layers(y: np.ndarray, layers: list, color: np.ndarray) -> np.ndarray:
    """`y` inked in `color` with `layers` [(where, alpha)]: the whole frame's (where None; at most one) and boxes'
    (where a box's slices), never lighter than what the ink crosses (ink_over). The boxes' (the face strokes) join
    the whole frame's (the contours and the outline) by their max, as the teacher inks its person layer, in one pass
    over the frame (a 1080p close-up's face box was a second: ~2 ms); without a whole frame's, each box in its own.
    `y` is written in place where a box is inked on its own, and the whole frame's alpha where boxes join it."""
    whole = next((alpha for box, alpha in layers if box is None), None)
    for box, alpha in layers:
        if box is None:
            continue
        if whole is not None:
            whole[box] = cv2.max(whole[box], alpha)
        else:
            y[box] = ink_over(y[box], alpha, color)
    return y if whole is None else ink_over(y, whole, color)


def _face_strokes(warped: np.ndarray, faces: Sequence, line: float, weight: float) -> list:
    """The face strokes (studio.stylize.face_ink) of each face with a mesh, inked in its own box only (the rest of a
    1080p frame has no strokes to blend): [(box, alpha)]."""
    layers = []
    for face in faces:
        box = face_box(face, warped.shape)
        if box is None:
            continue
        rows, cols = box
        layers.append((box, face_ink((rows.stop - rows.start, cols.stop - cols.start), [face.cropped(box)], line,
                                     weight, image=warped[box])))
    return layers


def face_accents(y: np.ndarray, faces: Sequence, character, color: float) -> np.ndarray:
    """The frame `y` (RGB uint8, at its own size; `faces` there) with each face's irises in the character's eye colour
    with a catch-light, and its lips in the character's blush, as the teacher paints them on its person layer at the
    colour factor `color` (studio.compose.eye_accents, lip_tint): a few pixels a student's blocks cannot place, so
    drawn, not learned. Without them the step showed the photo's irises (a webcam's violet cast on brown eyes, where
    the teacher paints classic's brown) and pale lips. In place, in each face's eyes-and-lips box only (a 1080p
    close-up's, 2.4 ms on one core)."""
    if color <= 0.0:
        return y
    for face in faces:
        box = accents_box(face, y.shape)  # holds the boxes the two paint in
        if box is None:
            continue
        crop = [face.cropped(box)]
        y[box] = lip_tint(eye_accents(y[box], crop, character, color), crop, character, color)
    return y


DETAIL_BLOCKS = 2  # the finest structure a student's output holds, in its blocks (bilinear over block means)
DETAIL_FACE_PX = 256  # px: a wider face's detail is worked at this width
DETAIL_PAINT_PX = 60  # px: a narrower face is painted by the teacher at a scale that keeps nearly all of it: used as is


def _low(x: np.ndarray, block: float) -> np.ndarray:
    """`x` (float32) as an output placed in `block`-pixel blocks holds it: block means, brought up bilinearly."""
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def face_details(photo: np.ndarray, faces: Sequence, texture: float, block: float) -> list:
    """Per face with a mesh, the photo's part of `add_face_details`: (its box, the size (w, h) it is worked at, its
    feathered oval (h, w, 1) float32 there, the fine band of the painted photo there). `photo`: the warped frame,
    RGB uint8; `faces`: its (moved) faces; `block`: the frame pixels below which the student's output holds nothing
    (DETAIL_BLOCKS of its blocks at this frame's size). The photo is painted as the teacher paints a face
    (face_paint.paint_faces: FACE_TEXTURE of the texture factor, smoothed against the face's own size), so skin is as
    smooth as the teacher's and eyes, brows, glasses and mouth keep their shape. A face wider than DETAIL_FACE_PX is
    worked at that width (a 1080p close-up: 24 -> 11 ms, and 0.02 dB further from the teacher); one narrower than
    DETAIL_PAINT_PX is taken as it is (the teacher's painting at its scale keeps nearly all of it; the same PSNR, and
    a crowd's 32 meshed faces cost 23 ms instead of 46)."""
    iscale = image_scale(photo.shape)
    details = []
    for face in faces:
        box = face_box(face, photo.shape)
        if box is None:
            continue
        rows, cols = box
        r = min(1.0, DETAIL_FACE_PX / max(1.0, face.box.width))
        h, w = rows.stop - rows.start, cols.stop - cols.start
        size = (max(1, round(w * r)), max(1, round(h * r)))
        oval = face_region(size[::-1], [face.cropped(box).scaled(size[0] / w, size[1] / h)])
        if not oval.any():
            continue
        crop = photo[box] if r == 1.0 else cv2.resize(photo[box], size, interpolation=cv2.INTER_AREA)
        scale = min(iscale, max(0.2, face.box.width / FACE_SIZE)) * size[0] / w
        painted = crop.astype(np.float32) * (1.0 / 255.0)
        if face.box.width >= DETAIL_PAINT_PX:
            painted = abstract(painted, FACE_TEXTURE * texture, scale=scale)
        m = feather(oval, 2.0 * max(1.0, iscale) * size[0] / w)[..., None]
        details.append((box, size, m, painted - _low(painted, block * size[0] / w)))
    return details


def add_face_details(y: np.ndarray, details: list, block: float) -> np.ndarray:
    """`y` (RGB uint8, the student's frame at the photo's size) with each face oval's fine band (finer than `block`
    pixels) replaced by the photo's (face_details). A student at a working size places a face in 4x4 blocks of it:
    at 512 px a face at the back of a group is a few blocks wide and comes out a featureless blur, glasses and eyes
    gone, where the teacher paints every face at its own detail level. Its colours, skin ramp and shading (the coarser
    bands) stay the student's. Changes `y` in place and returns it."""
    for box, size, m, fine in details:
        here = y[box]
        h, w = here.shape[:2]
        s = (here if size == (w, h) else cv2.resize(here, size, interpolation=cv2.INTER_AREA)).astype(np.float32)
        s *= 1.0 / 255.0
        change = m * (fine - (s - _low(s, block * size[0] / w)))
        # Added as two saturating uint8 layers (lighter, darker), brought up to the box's size as uint8: a float
        # pass over a 1080p close-up's box costs several ms.
        up, down = (cv2.convertScaleAbs(cv2.max(sign * change, 0.0), alpha=255.0) for sign in (1.0, -1.0))
        if size != (w, h):
            up, down = (cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in (up, down))
        y[box] = cv2.subtract(cv2.add(here, up), down)
    return y


SKIN_LIFT = 0.75  # of the way from the student's skin lightness to the teacher's lit skin, times its skin strength
SKIN_KEY = (6.0, 5.0)  # sigma in L* and in a*b*: how near a face's skin colour in the student's output a pixel is
SKIN_REACH = 3.0  # face widths: sigma of the lift's fall-off around its face
SKIN_MIN_FACE = 60  # px at the working size: a narrower face's cheeks are a few of the student's blocks, unmeasurable


def lift_skin(y: np.ndarray, small: np.ndarray, faces: Sequence, character, color: float,
              people: Optional[np.ndarray] = None) -> np.ndarray:
    """The student's output `y` (RGB uint8 at the working size, `small` the frame there, `faces` scaled to it) with
    each wide enough face's skin brought toward the lightness the teacher gives it (studio.compose.map_skin: the
    character's skin ramp at the person's own lightness, the lit tone most of the skin keeps). The students paint skin
    darker than their teachers, every character on every held-out portrait (3-9 L* at the cheeks: the teacher's
    lit/shadow levels come out as their blur). Per face: the photo's skin tone gives the teacher's lit lightness
    (`lit_skin`); the student's own cheeks (their median) say where it stands; the gain between the two is applied to
    the pixels whose colour is near those cheeks (SKIN_KEY), near the face (SKIN_REACH) and, given its mask, within
    `people`, SKIN_LIFT of the way and at the teacher's strength for the colour factor. A copy; `y` if nothing moved.
    On the seven held-out photos at 512 px the step comes 0.12 dB closer to the teacher (each character +0.10 to
    +0.12), and 0.12 on nine more portraits and groups, none further; 2.3-2.8 ms per frame with faces (docs/
    PERFORMANCE.md, "The skin's lightness").
    """
    from studio.color import lab_to_rgb, rgb_to_lab
    from studio.compose import lit_skin, skin_strength
    from studio.perception.skin import skin_tone

    wide = [f.scaled(0.5, 0.5) for f in faces if f.has_mesh and f.box.width >= SKIN_MIN_FACE]
    if not wide:
        return y
    # Measured and keyed at half the working size (2.3 ms instead of 6 for two faces; the key's edge is under the
    # outline), applied at the full working size.
    h, w = y.shape[:2]
    half = (max(1, w // 2), max(1, h // 2))
    y2, photo = (cv2.resize(a, half, interpolation=cv2.INTER_AREA) for a in (y, small))
    lab = None
    gain = [np.zeros(half[::-1], np.float32) for _ in range(3)]
    moved = False
    for face in wide:
        tone = skin_tone(photo, face)
        if tone is None:
            continue
        lab = rgb_to_lab(y2) if lab is None else lab
        own = skin_tone(y2, face, lab)  # the student's cheeks
        if own is None:
            continue
        own = np.float32([own.L, own.a, own.b])
        want = np.array([lit_skin(character, tone)[0], own[1], own[2]], np.float32)
        rgb = lab_to_rgb(np.stack([want, own])[None])[0]
        g = (SKIN_LIFT * skin_strength(color)) * (rgb[0] / np.maximum(rgb[1], 1 / 255) - 1)
        key = skin_key(lab, own, face, SKIN_KEY, SKIN_REACH)
        for c in range(3):
            cv2.scaleAdd(key, float(g[c]), gain[c], dst=gain[c])
        moved = True
    if not moved:
        return y
    gain = cv2.merge(gain)
    if people is not None:
        gain = cv2.multiply(gain, cv2.merge([cv2.resize(people, half, interpolation=cv2.INTER_LINEAR)] * 3))
    gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.convertScaleAbs(cv2.multiply(y.astype(np.float32), np.maximum(gain + 1.0, 0.0)))


HAIR_FACE_PX = 80  # px: each head's hair is found with its face at most this wide (the teacher: 160)
HAIR_COARSE = 2  # the hair's light smoothed, and each head's levels taken, at 1/2 of the working size


def find_hair(small: np.ndarray, faces: Sequence, people: Callable[[], Optional[np.ndarray]]
              ) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The people's hair in `small` (the frame at the working size, `faces` scaled to it) as the teacher finds it
    (studio.perception.hair_and_heads, each head analysed with its face at most HAIR_FACE_PX wide): (its mask, whose
    hair each pixel is), within the people's mask `people` gives (at any size; None: no one segmented, and the hair
    is not guessed). None where none is found."""
    from studio.perception.hair import hair_and_heads

    mask = people()
    if mask is None or not any(f.has_mesh for f in faces):
        return None
    h, w = small.shape[:2]
    person = mask if mask.shape == (h, w) else cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    hair, heads = hair_and_heads(small, faces, person, None, HAIR_FACE_PX)
    return (hair, heads) if float(hair.max()) >= 0.3 else None


def shade_hair(y: np.ndarray, small: np.ndarray, character, color: float,
               hair: Optional[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The student's output `y` (RGB uint8 at the working size, `small` the frame there) with the people's hair (its
    mask and heads `hair`, `find_hair`; None: none) shaded as the teacher shades it (studio.compose.hair_shading: each
    head's hair at the photo's own lightness through the character's tone and colour mapping, measured here on the
    student's output; a shadow tone below the head's median light and a highlight band at its brightest), at the
    teacher's strength for the colour factor. The students blur each head's two tones and band into one and keep
    the photo's hue too much (red hair stays red where the noir teacher turns it ochre). A copy; `y` without hair.
    The shading is coarse (HAIR_COARSE: its light smoothed, and each head's levels taken, at half the working
    size): 66-68 dB from the exact shading."""
    from studio.compose import hair_shading, hair_strength

    if hair is None:
        return y
    mask, heads = hair
    out, _ = hair_shading(small.astype(np.float32) / 255.0, y.astype(np.float32) / 255.0, mask, character,
                          hair_strength(color), coarse=HAIR_COARSE, strands=False, heads=heads)
    return cv2.convertScaleAbs(out, alpha=255.0)


def skin_key(lab: np.ndarray, own: np.ndarray, face, sigmas: tuple, reach: float) -> np.ndarray:
    """How much each pixel of `lab` (a frame in L*a*b*, float32) is `face`'s skin, in [0, 1]: a Gaussian in colour
    around `own` (that skin's colour; `sigmas` in L* and in a*b*) times one in space around the face's centre
    (sigma `reach` face widths, separable)."""
    h, w = lab.shape[:2]
    d = cv2.subtract(lab, tuple(float(v) for v in own) + (0.0,))
    weights = -0.5 / np.float32([[sigmas[0], sigmas[1], sigmas[1]]]) ** 2
    key = cv2.exp(cv2.transform(cv2.multiply(d, d), weights))
    (cx, cy), r = face.box.center, reach * face.box.width
    gx = np.exp(-0.5 * ((np.arange(w, dtype=np.float32) - cx) / r) ** 2)
    gy = np.exp(-0.5 * ((np.arange(h, dtype=np.float32) - cy) / r) ** 2)
    return cv2.multiply(key, np.outer(gy, gx))


QUIET_KEY = (30.0, 6.0)  # sigma in L* and a*b* around a face's skin colour in the photo: its shading varies its L*
QUIET_MIN_FACE = 40  # px at the ink's size: a narrower face's cheeks are too few pixels to measure its skin by
QUIET_SIDE = 256  # px: the quiet mask is keyed on the photo brought down to about this long side


def skin_quiet(small: np.ndarray, faces: Sequence) -> Optional[np.ndarray]:
    """Where the photo `small` (a frame where its lines are placed, `ink_frame`; `faces` scaled to it) is skin, as
    the contours' quiet mask (ink_lines: only strong edges ink there): per face with a mesh at least QUIET_MIN_FACE
    wide, its cheeks' colour in the photo keyed around it (`skin_key`, QUIET_KEY, within SKIN_REACH face widths); the
    largest over the faces, keyed at about QUIET_SIDE px (the mask is soft; a 1080p frame's 7 faces cost 38 ms at
    the ink's size) and brought back. None without such a face. The teacher keeps all skin quiet by its skin mask
    (perception.skin_mask, 25-90 ms a frame); the step kept only the face ovals quiet and inked necks, arms and
    chests. On the held-out photos at 512 px: +0.09 dB (classic +0.07, pastel +0.04, noir +0.17)."""
    from studio.color import rgb_to_lab
    from studio.perception.skin import skin_tone

    wide = [f for f in faces if f.has_mesh and f.box.width >= QUIET_MIN_FACE]
    if not wide:
        return None
    h, w = small.shape[:2]
    q = max(1, round(max(h, w) / QUIET_SIDE))
    photo = small if q == 1 else cv2.resize(small, (max(1, w // q), max(1, h // q)), interpolation=cv2.INTER_AREA)
    sx, sy = photo.shape[1] / w, photo.shape[0] / h
    lab = rgb_to_lab(photo)
    out = None
    for face in wide:
        face = face.scaled(sx, sy)
        own = skin_tone(photo, face, lab)
        if own is None:
            continue
        key = skin_key(lab, (own.L, own.a, own.b), face, QUIET_KEY, SKIN_REACH)
        out = key if out is None else cv2.max(out, key)
    if out is None or q == 1:
        return out
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)


def _painted(engine, x: np.ndarray, factors: np.ndarray, small: np.ndarray, flat: bool, faces: Optional[Sequence],
             character, mask: Optional[Callable[[], Optional[np.ndarray]]],
             hair: Optional[Callable[[], Optional[tuple[np.ndarray, np.ndarray]]]]) -> np.ndarray:
    """The network's output at the working size (`_network`), then with `faces` (at that size) and `character` the
    skin lifted (`lift_skin`) within the people's mask `mask` gives (None: no one segmented) and the hair `hair`
    gives (`find_hair`) shaded (`shade_hair`), as the teacher paints them. In the stylizer's thread, while the
    caller's draws the ink."""
    y = _network(engine, x, factors, small if flat else None)
    if faces:
        color = float(factors[0, STUDENT_FACTORS.index("color")])
        y = lift_skin(y, small, faces, character, color, mask() if mask is not None else None)
        y = shade_hair(y, small, character, color, hair() if hair is not None else None)
    return y


def _network(engine, x: np.ndarray, factors: np.ndarray, small: Optional[np.ndarray]) -> np.ndarray:
    """The engine's output for the working-size frame `x` as RGB uint8, flattened with `small` (that frame as RGB
    uint8) as part of the guide, or as it is without."""
    y = to_rgb8(engine(x, factors)[0])
    return y if small is None else flatten(y, small, float(factors[0, STUDENT_FACTORS.index("texture")]))


def to_hwc(chw: np.ndarray) -> np.ndarray:
    """An engine's (3, H, W) float output as float32 (H, W, 3), by OpenCV's merge (faster than numpy's transpose)."""
    return cv2.merge([np.ascontiguousarray(c, np.float32) for c in chw])


def to_rgb8(chw: np.ndarray) -> np.ndarray:
    """An engine's (3, H, W) float output as RGB uint8 (H, W, 3), rounded: two OpenCV passes (several times faster
    than numpy's transpose, scale and clip). The students clamp their output to [0, 1] (convertScaleAbs would fold a
    negative value up)."""
    return cv2.convertScaleAbs(to_hwc(chw), alpha=255.0)


class StudentStylizer:
    """One character's student on one engine, with the character's geometry and factors resolved once.
    `contours`: draw the teacher's contour lines and the people's outline over the student (`contour_ink`,
    `outline_ink`; their cost, docs/PERFORMANCE.md "Contour lines" and "The person's outline", is mostly hidden
    behind the network, which runs meanwhile in this stylizer's thread after the person's segmentation); off, only
    the face strokes are drawn.

    Raises ValueError (no such character or student) or EngineUnavailable (the engine cannot run here)."""

    def __init__(self, cfg, character: str, engine: str = "auto", student: Optional[str] = None,
                 line: Optional[float] = None, texture: Optional[float] = None, color: Optional[float] = None,
                 warp: Optional[float] = None, device: str = "auto", contours: bool = True):
        self.character = load_character(character, cfg)
        self._line_rgb = hex_to_rgb(self.character.line_color)[0]
        self.folder = student_folder(cfg, character, student)
        self.engine = load_engine(engine, self.folder, device)
        self.contours = contours
        self.max_pixels = cfg.max_input_pixels
        # The network runs on this thread while the caller's draws the ink (stylize_frame). One per stylizer: calls
        # on one stylizer come one at a time; its thread ends with it.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"student-{self.character.name}")
        weakref.finalize(self, self._pool.shutdown, wait=False)
        self.set_factors(line, texture, color, warp)

    def set_factors(self, line: Optional[float] = None, texture: Optional[float] = None,
                    color: Optional[float] = None, warp: Optional[float] = None) -> None:
        """New factor values (None: the character's default) for the next frames."""
        factors = resolve_factors(self.character, line, texture, color, warp)
        self._factors = np.array([[factors[k] for k in STUDENT_FACTORS]], np.float32)
        self.factors = factors

    def __call__(self, image: np.ndarray, faces: Sequence) -> np.ndarray:
        check_image(image, self.max_pixels)  # the teacher's rule: a 1-px-wide image is refused, not a crash
        ink = (self.factors["line"], self.character.line_weight, self._line_rgb)
        return stylize_frame(self.engine, image, faces, self.character.geometry, self.factors["warp"],
                             self._factors, ink, self.factors["background_line"] if self.contours else 0.0,
                             self._pool, outline=self.contours, detail=True, skin=self.character)
