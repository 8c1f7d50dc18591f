"""Hair, estimated: no hair model ships with mediapipe, so hair is the person's pixels in a head-shaped region
around each face whose colour is closer to the hair just above the forehead than to the face's skin (no hair
when that band is the face's own skin by colour or smoothness: a bald or shaved head).

    hair = hair_mask(image_rgb_uint8, faces, person, skin)     # soft (H, W) float32 in [0, 1]
    hair, heads = hair_and_heads(image_rgb_uint8, faces, person, skin)   # and whose: uint16 labels 1 + face index
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from ..color import rgb_to_lab
from ..imageops import gradient_magnitude
from ..types import Face, Mask
from .faces import FACE_OVAL, check_image
from .person import remove_small_blobs
from .skin import COLOUR_SEEN_SIGMA, face_skin_roi

HAIR_FACE_PX = 160  # each head is analysed with its face at most this wide, then resized back
HAIRLINE_RUN = 0.03  # of the face's height: how far up hair must go on from a hairline above the forehead
CROWD_FACES = 10  # a photo with this many faces is a crowd: each head's hair is looked for on its skull only
SHORT_HAIR = 0.25  # and how far at most before the person ends (longer: the background the person mask runs into)
CROWN_REACH = 0.15  # of the face's height: how far above the skull's ellipse a crown's light is looked for (a high
# crown: the light Asian portrait's is 0.55 of her face's height above its oval's top, her skull's ellipse 0.4)
CROWN_CHROMA = 20.0  # a*b* units: a crown's light may carry the hair's hue up to this chroma (dark hair's pigment)
HAIR_BAND = (0.30, 0.06)  # of the face's height above the face oval's top: the band the hair's colour is sampled in
HEAD_OWN = 0.25  # a face's hair estimate from which a pixel can be its head's
BACKGROUND_REACH = 0.3  # of the face's width: how far over the person the colour round the crown is carried
BACKGROUND_LAB = np.array([8.0, 4.0, 4.0])  # L*a*b* units within which a colour sample's pixel is that background's


def _face_skin_in(shape, face: Face, roi: tuple[int, int, int, int], size: Optional[tuple[int, int]]
                  ) -> Optional[np.ndarray]:
    """The face's surely-skin pixels (studio.perception.skin.face_skin_roi) inside `roi` (y0, y1, x0, x1), as a
    boolean mask resized to `size` (w, h; None: the region's own size); None when they do not meet."""
    ry0, ry1, rx0, rx1 = roi
    sy, sx, sm = face_skin_roi(shape, face)
    out = np.zeros((ry1 - ry0, rx1 - rx0), np.uint8)
    ty0, tx0 = max(sy, ry0), max(sx, rx0)
    ty1, tx1 = min(sy + sm.shape[0], ry1), min(sx + sm.shape[1], rx1)
    if ty1 <= ty0 or tx1 <= tx0:
        return None
    out[ty0 - ry0:ty1 - ry0, tx0 - rx0:tx1 - rx0] = sm[ty0 - sy:ty1 - sy, tx0 - sx:tx1 - sx]
    return (cv2.resize(out, size, interpolation=cv2.INTER_NEAREST) if size is not None else out).astype(bool)


def _bare_scalp(fine: np.ndarray, band: tuple[slice, slice], on_person: np.ndarray, tex_skin: float,
                mu: np.ndarray, skin_mu: np.ndarray) -> bool:
    """Whether the band above the forehead is a bald or shaved head: the face's own skin, not hair. Either it has
    the face's colour (`skin_mu`) and no more texture than the face, or (shine and shadow change a scalp's colour)
    it is as smooth as the face's cheeks or smoother, not much darker, and of a skin-like chroma; hair strands
    have fine texture. (Blond hair can have a light skin's colour: on group_4faces_diverse_skin_01 it was taken
    for a scalp by its colour alone, with four times the cheeks' texture, and painted as skin.) `fine`: the head's
    texture (`_texture`); `tex_skin`: its median on the cheeks."""
    tex_hair = float(np.median(fine[band][on_person]))
    smooth = tex_hair < 0.75 * tex_skin
    textured = tex_hair > 2.0 * tex_skin
    skin_like = mu[0] > skin_mu[0] - 20.0 and float(np.linalg.norm(mu[1:] - skin_mu[1:])) < 15.0
    return bool((np.linalg.norm(mu - skin_mu) < 10.0 and not textured) or (smooth and skin_like))


def weighted_quantile(x: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Per column of `x` (N, C), the q-quantile of its values weighted by `weights` (N,): the smallest value whose
    cumulative weight reaches q of the total. Equal weights give numpy's median / percentile (bit for bit)."""
    if np.all(weights == weights[0]):
        return np.median(x, axis=0) if q == 0.5 else np.percentile(x, 100.0 * q, axis=0)
    order = np.argsort(x, axis=0, kind="stable")
    cum = np.cumsum(weights[order], axis=0)
    at = np.minimum((cum < q * cum[-1]).sum(axis=0), len(x) - 1)
    return np.take_along_axis(x, order, axis=0)[at, np.arange(x.shape[1])]


def _background_weights(sample: np.ndarray, background: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Weights (N,) for a hair colour sample's pixels: ~0 for a pixel of the colour of the background beside it
    (`background`, (N, 3) L*a*b*; `near`: how much background there is beside it, 0-1), 1 for the rest. In a dim
    room the person mask runs a few pixels past a head into the black round it, and the band above the forehead
    reaches past the crown of short hair: its median was the black, and a blond man's hair was painted dark brown
    and as large as the black the colour model then took in. When most of the sample is the background's colour
    (black hair against black), all of it counts: the weights fade to 1 as that share goes from 20 % to 40 %."""
    w = _unlike_background(sample, background, near)
    keep = float(np.clip((w.mean() - 0.2) / 0.2, 0.0, 1.0))
    return keep * w + (1.0 - keep)


def _background_beside(seen: np.ndarray, off_lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the background's colour beside each pixel, how much background there is beside it, 0-1) from `_head_hair`'s
    blurs of what is off the person: `seen` (its share of the blur's window) and `off_lab` (its colour times that)."""
    return off_lab / np.maximum(seen, 1e-6)[..., None], np.clip(seen / 0.05, 0.0, 1.0)


def _unlike_background(lab: np.ndarray, background: np.ndarray, near: np.ndarray) -> np.ndarray:
    """0 for a colour within BACKGROUND_LAB of the background beside it (`_background_beside`), 1 beyond twice that
    or where there is no background beside it (`near` 0)."""
    return 1.0 - near * (1.0 - np.clip(_distance(lab, background, BACKGROUND_LAB) - 1.0, 0.0, 1.0))


def _distance(lab: np.ndarray, mu: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """|(lab - mu) / scale| per pixel of a float32 L*a*b* image (or (N, 3) colours), `mu` one colour or one per
    pixel, in float32 channel by channel (in float64 over the last axis it took ~2 ms for a head at the realtime
    step's size, ten times this)."""
    lab, mu, inv = np.asarray(lab, np.float32), np.asarray(mu, np.float32), np.float32(1.0) / np.float32(scale)
    d2 = np.square((lab[..., 0] - mu[..., 0]) * inv[0])
    for c in (1, 2):
        d2 += np.square((lab[..., c] - mu[..., c]) * inv[c])
    return np.sqrt(d2, out=d2)


def _texture(L: np.ndarray, face_width: float) -> np.ndarray:
    """Fine texture: |L* - L* smoothed at a 60th of the face|. Hair strands have it; skin and a bare scalp little."""
    return np.abs(L - cv2.GaussianBlur(L, (0, 0), max(0.7, face_width / 60.0)))


def _hairline(lab: np.ndarray, fine: np.ndarray, pers: np.ndarray, tex_skin: float, skin_mu: np.ndarray,
              cols: tuple[int, int], top: float, face_height: float) -> Optional[int]:
    """Short hair above a high forehead: the row where it starts, or None. Going up from the face oval's top through
    the forehead, hair starts where three rows together are darker than the skin by 8 L* and have twice the cheeks'
    fine texture, for `HAIRLINE_RUN` of the face's height; above it, rows stay dark until the person ends, within
    `SHORT_HAIR` of the face's height. A bald head's top meets its background instead: a dark background the person
    mask runs into goes on (the collage's tiles), a light one is not dark."""
    x0, x1 = cols
    need = max(3, int(round(HAIRLINE_RUN * face_height)))
    start, run = None, 0
    for y in range(int(top - 0.02 * face_height), max(1, int(top - 0.6 * face_height)), -1):
        rows = slice(y - 1, y + 2)
        on = pers[rows, x0:x1] > 0.5
        if on.sum() < 6:  # the person ends: short hair if it started and did not go on too long
            return start if start is not None and run >= need else None
        mu = np.median(lab[rows, x0:x1][on], axis=0)
        dark = mu[0] < skin_mu[0] - 8.0
        if start is None:
            if dark and float(np.median(fine[rows, x0:x1][on])) > 2.0 * tex_skin:
                run += 1
                if run >= need:
                    start = y + need - 1
            else:
                run = 0
        elif not dark or start - y > SHORT_HAIR * face_height:
            return None
        else:
            run += 1
    return None


def _head_region(face: Face, crowded: bool = False) -> tuple[float, float, float, float, float, float]:
    """(centre x, centre y, half width, half height, face width, face height) of the ellipse a face's hair is looked
    for in. Alone: a tall ellipse around the face reaching above the crown and down past the shoulders (long hair),
    wider than the face. Crowded (`_crowded`): the skull only, from the crown to the mouth beside
    the face; in a crowd the long-hair ellipse takes the dark clothes and hair of the people around as hair and
    paints a dark halo round the head."""
    oval = face.landmarks[list(FACE_OVAL)]
    cx, cy = (float(v) for v in oval.mean(axis=0))
    fw, fh = float(np.ptp(oval[:, 0])), float(np.ptp(oval[:, 1]))
    if crowded:
        return cx, cy - 0.05 * fh, 0.68 * fw, 0.85 * fh, fw, fh
    return cx, cy + 0.25 * fh, 1.1 * fw, 1.35 * fh, fw, fh


def _crowded(face: Face, faces: Sequence[Face]) -> bool:
    """Whether the face is one of a crowd: another face's centre lies inside its long-hair ellipse, or the photo has
    CROWD_FACES faces or more (the people around a face in a crowd, dark clothes and hair, are seldom all found as
    faces, but they fill that ellipse)."""
    if len(faces) >= CROWD_FACES:
        return True
    ex, ey, ax, ay, _, _ = _head_region(face)
    for other in faces:
        if other is face:
            continue
        ox, oy = other.box.center
        if ((ox - ex) / ax) ** 2 + ((oy - ey) / ay) ** 2 < 1.0:
            return True
    return False


def _crown_light(lab: np.ndarray, fine: np.ndarray, pers: np.ndarray, region: np.ndarray, face: Face, to_small,
                 mu: np.ndarray, scale: np.ndarray, tex_skin: float, below: float, off) -> np.ndarray:
    """The light on the crown, as hair (0-1, the head region's size): on the skull above the middle of the hair's
    sample band (`below`, a row: lower, a black-haired woman's forehead under her hairline was taken), on the
    person, the pixels lighter than the hair whose colour is the hair's thinned toward white (the hue kept, the
    chroma less; dark hair's up to CROWN_CHROMA: its pigment lit) and textured as hair is. The skull's ellipse is
    taken CROWN_REACH of the face's height higher. The colour model alone (within `scale` of `mu`) cut a studio
    light's shine out of a red crown: a hole the abstraction painted as a pale patch and inked as a maze of short
    strokes. Not the background's colour beside it (`off`: (seen, off_lab) of `_head_hair`): a white wall the person
    mask runs into behind dark hair is lighter, neutral and, with the hair, no highlight."""
    sh, sw = region.shape
    out = np.zeros((sh, sw), np.float32)
    ex, ey, ax, ay, _, fh = _head_region(face, crowded=True)  # the skull, reaching CROWN_REACH higher
    ey, ay = ey - 0.5 * CROWN_REACH * fh, ay + 0.5 * CROWN_REACH * fh
    (sex, sey), = to_small(np.array([[ex, ey]]))
    (axs, ays), = to_small(np.array([[ex + ax, ey + ay]])) - np.array([[sex, sey]])
    axs, ays = max(1, int(axs)), max(1, int(ays))
    soft = max(0.5, 0.03 * axs)
    # Worked in the skull's box above `below` (and its blur's reach): a fifth of the head region's pixels.
    pad = int(np.ceil(3 * soft)) + 1
    y0, y1 = max(0, int(sey) - ays - pad), min(sh, int(below) + pad, int(sey) + ays + pad)
    x0, x1 = max(0, int(sex) - axs - pad), min(sw, int(sex) + axs + pad + 1)
    if y1 - y0 < 2 or x1 - x0 < 2:
        return out
    box = (slice(y0, y1), slice(x0, x1))
    skull = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.ellipse(skull, (int(sex) - x0, int(sey) - y0), (axs, ays), 0, 0, 360, 1.0, -1)
    skull[max(0, int(below) - y0):] = 0.0
    skull = cv2.GaussianBlur(skull, (0, 0), soft)
    lab = lab[box]
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    f32 = np.float32
    lighter = np.clip((L - f32(mu[0])) / f32(scale[0]) + f32(0.5), 0.0, 1.0)
    # The chroma along the hair's (t: 1 the hair's, 0 grey) and off it (e), in the scale's a*b* units.
    hue = f32(mu[1:])
    n2 = float(hue @ hue)
    sab = f32(np.mean(scale[1:]))
    if n2 > 16.0:
        t = (a * hue[0] + b * hue[1]) / f32(n2)
        e = gradient_magnitude(a - t * hue[0], b - t * hue[1]) / sab
        # Thinned toward white, or for dark hair its pigment lit: near-black brown hair (chroma 4) shows its brown
        # (chroma 15) where a light falls on it, as the light Asian portrait's crown; up to CROWN_CHROMA.
        reach = f32(max(1.4, CROWN_CHROMA / np.sqrt(n2)))
        along = np.clip((t + f32(0.2)) * f32(5.0), 0.0, 1.0) * np.clip((reach - t) * f32(5.0), 0.0, 1.0)
    else:  # grey or black hair: its light is grey too
        e = np.maximum(gradient_magnitude(a, b) - f32(np.sqrt(n2)), 0.0) / sab
        along = f32(1.0)
    light = along * np.clip(f32(1.5) - e, 0.0, 1.0)
    light *= np.clip(cv2.GaussianBlur(fine[box], (0, 0), 1.0) / f32(tex_skin) - f32(1.0), 0.0, 1.0)  # strands
    light *= skull * lighter * np.clip(pers[box], 0.0, 1.0)
    if off is not None:
        light *= _unlike_background(lab, *_background_beside(*(v[box] for v in off)))
    out[box] = region[box] * light
    return out


def _head_hair(image: np.ndarray, face: Face, person: np.ndarray, crowded: bool = False,
               face_px: float = HAIR_FACE_PX) -> Optional[tuple[int, int, np.ndarray]]:
    """(y0, x0, soft hair mask of the head region at (y0, x0)) for one face with a mesh, or None."""
    h, w = image.shape[:2]
    lm = face.landmarks
    oval = lm[list(FACE_OVAL)]
    # Head region (_head_region); its bounding box (plus the blur margin) is the work area.
    ex, ey, ax, ay, fw, fh = _head_region(face, crowded)
    cx, cy = (float(v) for v in oval.mean(axis=0))
    sigma = max(1.0, 0.08 * fw)
    margin = int(3 * sigma) + 2
    rx0, rx1 = max(0, int(ex - ax) - margin), min(w, int(ex + ax) + margin + 1)
    ry0, ry1 = max(0, int(ey - ay) - margin), min(h, int(ey + ay) + margin + 1)
    if rx1 - rx0 < 8 or ry1 - ry0 < 8:
        return None
    # Work at a scale where the face is at most face_px wide (HAIR_FACE_PX in the teacher): a soft mask needs no
    # more, and a large face at full size costs ~150 ms.
    k = min(1.0, face_px / max(fw, 1.0))
    size = (max(4, int(round((rx1 - rx0) * k))), max(4, int(round((ry1 - ry0) * k))))
    sw, sh = size

    def to_small(pts: np.ndarray) -> np.ndarray:
        return (pts - [rx0, ry0]) * [sw / (rx1 - rx0), sh / (ry1 - ry0)]

    roi_img = np.ascontiguousarray(image[ry0:ry1, rx0:rx1])
    pixels = rgb_to_lab(cv2.resize(roi_img, size, interpolation=cv2.INTER_AREA) if k < 1 else roi_img)
    # The colours (samples and distances) through a Gaussian of COLOUR_SEEN_SIGMA (skin's) where the head is at its own
    # size (a smaller one is area-averaged already): a grey level of noise is several a*b* units in dark hair (the
    # night group under noise 40.1 -> 41.0 dB). The texture (the bald-scalp test, the hairline) is the pixels': read
    # through the Gaussian too it lost two people 2.6 dB.
    lab = pixels if k < 1 else rgb_to_lab(cv2.GaussianBlur(roi_img, (0, 0), COLOUR_SEEN_SIGMA))
    pers = person[ry0:ry1, rx0:rx1]
    if k < 1:
        pers = cv2.resize(pers, size, interpolation=cv2.INTER_AREA)
    fws, fhs = fw * k, fh * k
    (scx, scy), = to_small(np.array([[cx, cy]]))
    (sex, sey), = to_small(np.array([[ex, ey]]))
    region = np.zeros((sh, sw), np.float32)
    cv2.ellipse(region, (int(sex), int(sey)), (int(ax * k), int(ay * k)), 0, 0, 360, 1.0, -1)
    # Below the chin, hair falls beside the neck, never across the neck and chest.
    chin = int(to_small(oval)[:, 1].max())
    if chin < sh:
        region[max(0, chin):, max(0, int(scx - 0.55 * fws)):max(0, int(scx + 0.55 * fws))] = 0.0
    region = cv2.GaussianBlur(region, (0, 0), max(0.5, sigma * k))
    # Hair colour sample: a band above the top of the face oval (the hairline), on the person. Not cut by
    # the skin mask: blond and red hair often pass as skin there; the bald-head test catches a band that
    # is really forehead or scalp.
    top = float(to_small(oval)[:, 1].min())
    bx0, bx1 = max(0, int(scx - 0.3 * fws)), min(sw, int(scx + 0.3 * fws) + 1)
    # The face's own skin (cheeks, nose, chin) at the same scale.
    skin_small = _face_skin_in(image.shape, face, (ry0, ry1, rx0, rx1), size if k < 1 else None)
    if bx1 <= bx0 or skin_small is None or skin_small.sum() < 12:
        return None
    skin_mu = np.median(lab[skin_small], axis=0)
    fine = _texture(pixels[..., 0], fws)  # once per head: the bald-scalp test and the hairline both read it
    tex_skin = max(float(np.median(fine[skin_small])), 0.05)

    # The background's colour round the crown, carried over the person nearby: the colour of what is off the person
    # above the face's middle within the head region, averaged within BACKGROUND_REACH of the face's width.
    off = ((pers < 0.2) & (region > 0.05)).astype(np.float32)
    off[int(scy):] = 0.0
    seen = None  # how much of the blur's window is off the person; `off_lab` the colour there times that
    if off.sum() >= 12:
        # A wide blur: taken at a scale where it is 4 px (its result is smooth), then brought back.
        reach = max(1.0, BACKGROUND_REACH * fws)
        down = max(1.0, reach / 4.0)
        lsize = (max(1, int(round(sw / down))), max(1, int(round(sh / down))))
        seen, off_lab = (cv2.resize(cv2.GaussianBlur(cv2.resize(a, lsize, interpolation=cv2.INTER_AREA), (0, 0),
                                                     reach / down), size, interpolation=cv2.INTER_LINEAR)
                         for a in (off, lab * off[..., None]))

    def hair_sample(by0: int, by1: int) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The band's pixels on the person, their weights (`_background_weights`) and weighted median, or None when
        it is too small or bare scalp (or forehead)."""
        if by1 <= by0:
            return None
        band = (slice(by0, by1), slice(bx0, bx1))
        on_person = pers[band] > 0.5
        sample = lab[band][on_person]
        if len(sample) < 12:
            return None
        weights = np.ones(len(sample))
        if seen is not None:
            weights = _background_weights(sample, *_background_beside(seen[band][on_person], off_lab[band][on_person]))
        mu = weighted_quantile(sample, weights, 0.5)
        return None if _bare_scalp(fine, band, on_person, tex_skin, mu, skin_mu) else (sample, weights, mu)

    sample = hair_sample(max(0, int(top - HAIR_BAND[0] * fhs)), max(0, int(top - HAIR_BAND[1] * fhs)))
    line = None
    if sample is None:
        # Forehead, or a bald head? Above a high forehead, the hair may start further up than the band looks.
        line = _hairline(lab, fine, pers, tex_skin, skin_mu, (bx0, bx1), top, fhs)
        sample = None if line is None else hair_sample(max(0, int(line - 0.2 * fhs)), line + 1)
        if sample is None:
            return None
    sample, weights, mu = sample
    scale = 2.5 * np.clip(weighted_quantile(np.abs(sample - mu), weights, 0.8), [8.0, 4.0, 4.0], [18.0, 9.0, 9.0])
    d = _distance(lab, mu, scale)
    m = region * np.clip(1.5 - d, 0.0, 1.0) * np.clip(pers, 0.0, 1.0)
    # Closer to this face's skin than to its hair is skin (a cheek beside a turned face, a neck), even
    # when the hair colour is near the skin's (blond, red, grey).
    d_skin = _distance(lab, skin_mu, scale)
    m *= np.clip((d_skin - d) * 2.0 + 0.5, 0.0, 1.0)
    if line is None and not crowded:  # (a crowd's heads are small: their crowns' light is a few pixels)
        np.maximum(m, _crown_light(lab, fine, pers, region, face, to_small, mu, scale, tex_skin,
                                   top - 0.5 * sum(HAIR_BAND) * fhs, None if seen is None else (seen, off_lab)), out=m)
    elif line is not None:
        # Short hair above a high forehead is a cap from the hairline up to the head's outline, lit or not: the light
        # on a crown makes it lighter than the sample (and as light as skin), and cropped hair is one region there.
        cap = np.zeros_like(region)
        cap[:line + 1] = 1.0
        cap = cv2.GaussianBlur(cap, (0, 0), max(0.5, 0.02 * fhs))
        np.maximum(m, region * cap * np.clip(pers, 0.0, 1.0), out=m)
    # The face itself is never hair (eyebrows and beards stay with the face): the hull of the whole mesh,
    # which also covers the near cheek of a turned face.
    face_area = np.zeros_like(region)
    cv2.fillConvexPoly(face_area, cv2.convexHull(np.round(to_small(lm[:468])).astype(np.int32)), 1.0)
    m *= 1.0 - face_area
    if k < 1:
        m = cv2.resize(m, (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_LINEAR)
    return ry0, rx0, m.astype(np.float32)


def hair_mask(image: np.ndarray, faces: Sequence[Face], person: np.ndarray, skin: Optional[np.ndarray],
              face_px: float = HAIR_FACE_PX) -> Mask:
    """Soft hair estimate: person ∩ head region ∩ colour closer to the hair above the forehead than to the
    face's skin, minus the face itself. Zero where there is no face with a mesh, and for bald heads.

    `skin` is not used to cut the hair: red and blond hair often pass the skin colour test, so the hair is
    decided against each face's own skin colour here, and the caller removes hair from the skin mask
    (`perceive` does). Each face is handled inside its own head region, so many small faces cost little; a head is
    analysed with its face at most `face_px` wide (the realtime step takes half the teacher's width: the mask moves
    by under 0.7 % of a pixel's weight on average, for about half the time). `hair_and_heads` also says whose.
    """
    return hair_and_heads(image, faces, person, skin, face_px)[0]


def hair_and_heads(image: np.ndarray, faces: Sequence[Face], person: np.ndarray, skin: Optional[np.ndarray],
                   face_px: float = HAIR_FACE_PX) -> tuple[Mask, np.ndarray]:
    """(`hair_mask`, heads): whose hair each pixel is, as a uint16 label image: 1 + the index in `faces` of the face
    whose own estimate reaches it (at least HEAD_OWN) and whose head region (`_head_region`) is the nearest, in that
    region's size; the mask's reach past the estimates (its closing and blur) takes the nearest label (with one
    face, all of the mask is its); 0: none. The hair's shading (studio.compose.hair_shading) shades each head's hair
    on its own, all its pieces as one: in a dark scene the heads' masks join through the black round them, and a
    night group's blonde was painted at her dark-haired neighbours' lightness. Where two heads' estimates overlap
    the nearer head is the owner, not the higher estimate: a crowd's estimates are equal there up to a grey level of
    noise, and the boundary came and went with it."""
    image = check_image(image)
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    heads = np.zeros((h, w), np.uint16)
    # With one face there is one head (a webcam's usual frame: 1 ms less at the realtime step's size). With several,
    # no face is hair, nor another's: a blonde's colour is a skin's, and her head's region took the chin of the face
    # above hers.
    meshed = [f for f in faces if f.has_mesh]
    several = len(meshed) > 1
    if several:
        nearest = np.full((h, w), np.inf, np.float32)
        face_areas = np.zeros((h, w), np.float32)
        for face in meshed:
            cv2.fillConvexPoly(face_areas, cv2.convexHull(np.round(face.landmarks[:468, :2]).astype(np.int32)), 1.0)
    owners = []  # the labels of the faces with hair
    for i, face in enumerate(faces, 1):
        if not face.has_mesh or face.box.width < 20:
            continue
        crowded = _crowded(face, faces)
        found = _head_hair(image, face, person, crowded, face_px)
        if found is None:
            continue
        y0, x0, m = found
        box = (slice(y0, y0 + m.shape[0]), slice(x0, x0 + m.shape[1]))
        if several:
            m = m * (1.0 - face_areas[box])
            ex, ey, ax, ay, _, _ = _head_region(face, crowded)
            ys = ((np.arange(y0, y0 + m.shape[0], dtype=np.float32) - ey) / ay) ** 2
            xs = ((np.arange(x0, x0 + m.shape[1], dtype=np.float32) - ex) / ax) ** 2
            far = ys[:, None] + xs[None, :]
            own = (m >= HEAD_OWN) & (far < nearest[box])
            heads[box][own] = i
            nearest[box][own] = far[own]
        np.maximum(out[box], m, out=out[box])
        owners.append(i)
    if out.max() == 0:
        return out, heads
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    out = remove_small_blobs(cv2.GaussianBlur(out, (0, 0), 1.5), 0.0005)
    if len(owners) == 1:
        heads[out > 0] = owners[0]
    else:
        heads = np.where(heads > 0, heads, cv2.dilate(heads, np.ones((11, 11), np.uint8)))
    return np.clip(out, 0.0, 1.0).astype(np.float32), heads
