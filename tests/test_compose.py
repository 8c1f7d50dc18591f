"""Composition: no halo at the silhouette, lighting normalisation, skin ramp order."""
import cv2
import numpy as np
import pytest

from studio import StylizeParams, Stylizer, compose
from studio.characters import load_character
from studio.color import rgb_to_lab
from studio.config import load_config
from studio.perception import perceive
from studio.types import SkinTone


def f01(img, side=512):
    f = side / max(img.shape[:2])
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def pasted(load_media):
    """A real person (with their real segmentation) pasted onto a real landscape: the true background is known."""
    person_img = load_media("fullbody_crouching_brown_skin_01.jpg")
    mask = perceive(person_img, load_config().perception).person
    bg = f01(load_media("bg_lake_mountains_01.jpg"))
    h, w = bg.shape[:2]
    p = cv2.resize(person_img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    comp = p * m[..., None] + bg * (1 - m[..., None])
    return comp, bg, m


def ring(mask, inner, outer):
    hard = (mask > 0.5).astype(np.uint8)
    a = cv2.dilate(hard, np.ones((2 * outer + 1,) * 2, np.uint8)) > 0
    b = cv2.dilate(hard, np.ones((2 * inner + 1,) * 2, np.uint8)) > 0
    return a & ~b


def delta_e(a, b, where):
    return float(np.linalg.norm(rgb_to_lab(a)[where] - rgb_to_lab(b)[where], axis=-1).mean())


def test_no_halo_around_the_silhouette(pasted):
    """Outside the silhouette (past the ink line) the result matches the same background stylised alone."""
    from studio import StylizeParams, Stylizer

    comp, bg, m = pasted
    stylizer = Stylizer(load_config())
    params = StylizeParams(character="classic", texture=0.9, color=0.0, background_color=0.0, warp=0.0,
                           normalize_light=False)
    to_u8 = lambda x: np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    with_person = stylizer(to_u8(comp), params).image.astype(np.float32) / 255
    alone = stylizer(to_u8(bg), params).image.astype(np.float32) / 255
    near = ring(m, 6, 14)
    assert near.sum() > 500
    err = delta_e(with_person, alone, near)
    far = ring(m, 40, 80)
    assert err < 6.0, err  # a halo (smeared person colours, a bright rim) shows as a large colour difference
    assert err < 3.0 * max(1.0, delta_e(with_person, alone, far))


def test_dim_photo_is_lifted_and_good_photo_kept(load_media):
    img = f01(load_media("portrait_light_skin_asian_01.jpg"))
    person = np.zeros(img.shape[:2], np.float32)
    same, info = compose.normalize_light(img, person, [])
    assert np.abs(same - img).mean() < 0.02
    dim = img * 0.3
    lifted, info = compose.normalize_light(dim, person, [])
    L = lambda x: float(np.median(rgb_to_lab(x)[..., 0]))  # noqa: E731
    assert L(lifted) > L(dim) + 15 and abs(L(lifted) - L(img)) < 12
    assert info


def test_a_clips_light_is_the_one_carried_across_it(load_media):
    """normalize_light's `steady` is given the image's own decision and the one it returns is applied: the same
    image as without it where it returns the decision unchanged, the image untouched where it returns none, and a
    half-way gain in between. realtime.renderers.SteadyClip carries a clip's: each frame's own moves it by its rate,
    and a cut starts again from the frame's own."""
    from realtime.renderers import SteadyClip

    img = f01(load_media("portrait_light_skin_asian_01.jpg"))
    person = np.zeros(img.shape[:2], np.float32)
    dim = img * 0.3
    own, info = compose.normalize_light(dim, person, [])
    seen = []

    def keep(gain, gamma, shift):
        seen.append((gain, gamma, np.array(shift)))
        return gain, gamma, shift

    same, same_info = compose.normalize_light(dim, person, [], steady=keep)
    assert np.array_equal(same, own) and same_info == info
    gain, gamma, shift = seen[0]
    assert abs(gain - info["exposure_gain"]) < 1e-3
    assert gain > 2.0 and gamma == 1.0 and not shift.any()
    untouched, none = compose.normalize_light(dim, person, [], steady=lambda g, y, s: (1.0, 1.0, np.zeros(2)))
    assert untouched is dim and none == {}
    half, half_info = compose.normalize_light(dim, person, [], steady=lambda g, y, s: (1.0 + (g - 1.0) / 2, y, s))
    L = lambda x: float(np.median(rgb_to_lab(x)[..., 0]))  # noqa: E731
    assert L(dim) + 5 < L(half) < L(own) - 5, (L(dim), L(half), L(own))

    steady = SteadyClip(rate=0.25)
    frame = (img * 255).astype(np.uint8)
    steady.see(frame)
    assert steady(2.0, 0.5, np.array([4.0, -8.0]))[0] == 2.0  # the first frame: its own
    steady.see(frame)
    g, y, s = steady(1.0, 1.0, np.zeros(2))
    assert (g, y) == (1.75, 0.625) and np.allclose(s, [3.0, -6.0])
    steady.see(255 - frame)  # a cut
    assert steady(1.0, 1.0, np.zeros(2))[:2] == (1.0, 1.0)


def test_a_clips_palette_is_carried_across_it(load_media):
    """colorize's `steady` (realtime.renderers.SteadyClip.palette) starts a layer's clustering from the centres the
    clip carries and moves them by its rate toward where they settle: the first frame is the photo's own; a coat
    crossing the next frame no longer recolours the unchanged rest of it as much as fitting afresh does; a cut starts
    again from the frame's own."""
    import cv2

    from realtime.renderers import SteadyClip
    from studio.characters import load_character
    from studio.stylize.cartoonizer import colorize

    img = load_media("fullbody_two_dancers_01.jpg")
    img = cv2.resize(img, (192, round(img.shape[0] * 192 / img.shape[1])), interpolation=cv2.INTER_AREA)
    crossed = img.copy()
    crossed[40:, :40] = (200, 30, 40)  # a red coat crossing the frame
    pal = load_character("classic", load_config()).palette_rgb()
    shade = lambda x, **kw: colorize(f01(x), 0.8, pal, k=10, **kw)  # noqa: E731
    clip = SteadyClip()
    clip.see(img)
    first = shade(img, steady=clip.palette, key="bg")
    assert np.array_equal(first, shade(img))
    clip.see(crossed)
    carried = shade(crossed, steady=clip.palette, key="bg")
    rest = np.abs(carried - first)[:, 48:].mean(), np.abs(shade(crossed) - first)[:, 48:].mean()
    assert rest[0] < 0.6 * rest[1], rest  # 0.47
    clip.see(255 - img)  # a cut
    assert np.array_equal(shade(255 - img, steady=clip.palette, key="bg"), shade(255 - img))


def test_backlit_person_is_lifted_dark_skin_is_not(load_media):
    cfg = load_config().perception
    img = f01(load_media("portrait_light_skin_asian_01.jpg"))
    person = perceive((img * 255).astype(np.uint8), cfg).person
    # The same photo with the person in shadow against the bright scene, as in a backlit shot.
    backlit = img * (1.0 - 0.75 * person[..., None])
    out, info = compose.normalize_light(backlit, person, [])
    sel = person > 0.5
    before = np.median(rgb_to_lab(backlit)[..., 0][sel])
    after = np.median(rgb_to_lab(out)[..., 0][sel])
    assert after > before + 10, (before, after, info)
    # A dark-skinned person photographed in good light keeps their skin as it is.
    dark = load_media("portrait_dark_skin_02.png")
    p = perceive(dark, cfg)
    d01 = dark.astype(np.float32) / 255
    kept, info = compose.normalize_light(d01, p.person, p.skin_tones)
    sel = p.skin > 0.5
    assert abs(np.median(rgb_to_lab(kept)[..., 0][sel]) - np.median(rgb_to_lab(d01)[..., 0][sel])) < 3, info



def test_faces_too_small_to_measure_do_not_decide_the_light(video_clip):
    """normalize_light with the faces: a face under LIGHT_FACE_PX counts for the photo's lightness only where no
    larger face does, and not for its colour cast. On the pedestrians' clip (faces of 12-20 px at 360) the cast
    correction pulled whole frames by b* +14 to +22 as small faces came and went (the teacher's video flickered at
    10.5 grey levels against the clip's 3.2; 6.7 now); on the stage clip a 16-px face measured at L* 2-3 switched the
    exposure gain between 1.12 and 1.19 as it was found or not. Without the faces the old rule holds."""
    from realtime.bench_stream import load_frames
    from studio.color import shrink

    cfg = load_config().perception
    shifts, old = [], []
    for frame in load_frames(video_clip("pedestrians_walking_faces_720p.mp4"), 6):
        frame = shrink(frame, 360)[0]
        p = perceive(frame, cfg)
        f = frame.astype(np.float32) / 255
        shifts.append(compose.normalize_light(f, p.person, p.skin_tones, p.faces)[1].get("cast_shift_ab", [0, 0]))
        old.append(compose.normalize_light(f, p.person, p.skin_tones)[1].get("cast_shift_ab", [0, 0]))
    assert max(abs(b) for _, b in shifts) < 4.0, shifts  # measured up to 1.4
    assert max(abs(b) for _, b in old) > 10.0, old  # the small faces' pull (14-22)
    gains = []
    for frame in load_frames(video_clip("stage_performer_lowlight_360p.mp4"), 6):
        frame = shrink(frame, 360)[0]
        p = perceive(frame, cfg)
        big = [i for i, face in enumerate(p.faces) if face.box.width > 22]  # the singer (26-27 px at 360)
        assert len(big) == 1, [face.box.width for face in p.faces]
        f = frame.astype(np.float32) / 255
        gains.append([compose.normalize_light(f, p.person, [p.skin_tones[i] for i in keep],
                                              [p.faces[i] for i in keep])[1].get("exposure_gain", 1.0)
                      for keep in (range(len(p.faces)), big)])
    assert all(abs(a - b) < 1e-6 for a, b in gains), gains  # the small face found or not: the same gain

def test_skin_chroma_band():
    blue = compose.skin_chroma_in_band(np.array([2.0, -12.0]))
    hue = np.degrees(np.arctan2(blue[1], blue[0]))
    assert compose.SKIN_HUE_BAND[0] - 1e-3 <= hue <= compose.SKIN_HUE_BAND[1] + 1e-3
    normal = np.array([14.0, 20.0], np.float32)
    assert np.allclose(compose.skin_chroma_in_band(normal), normal, atol=1e-4)


def test_skin_ramp_position_keeps_order():
    ch = load_character("classic", load_config())
    ramp = rgb_to_lab(ch.skin_ramp_rgb().reshape(1, -1, 3)).reshape(-1, 3)
    Ls = [compose.ramp_color(ramp, compose.tone_position(SkinTone(L, 12, 18, 0)))[0] for L in (30, 45, 60, 72)]
    assert all(a < b for a, b in zip(Ls, Ls[1:]))


def test_dark_suits_before_a_bright_wall_are_not_backlight(load_media):
    """two_people_01: the person mask is mostly dark suits (median L* under 25) before a bright wall, which the
    backlight rule took for a person in shadow: lifted at gamma 0.4, both men came out with near-white faces. Their
    face skin (L* 44-47) is lit, and it decides now."""
    img = load_media("two_people_01.jpg")
    p = perceive(img, load_config().perception)
    f = img.astype(np.float32) / 255
    L = rgb_to_lab(f)[..., 0]
    assert np.median(L[p.person > 0.5]) < 25 and np.median(L[p.person < 0.5]) > 45  # the old rule's case
    assert all(t is not None and 35 < t.L < 55 for t in p.skin_tones), p.skin_tones
    out, info = compose.normalize_light(f, p.person, p.skin_tones)
    assert "backlight_gamma" not in info and np.array_equal(out, f), info


def test_a_dim_flash_photo_keeps_its_people_skin(load_media):
    """two_faces_close_01: a flash photo in a dark room (highlights at 0.67 of white) was lifted by a gain of 1.46 and
    the two faces came out 16-20 L* lighter than the people are. The exposure gain now lifts their measured skin by
    at most EXPOSURE_SKIN_LIFT; a photo with nothing over half of white is still corrected whole (test above and
    test_pipeline's darkened portrait)."""
    from studio.perception import skin_tone

    img = load_media("two_faces_close_01.jpg")
    p = perceive(img, load_config().perception)
    f = img.astype(np.float32) / 255
    out, info = compose.normalize_light(f, p.person, p.skin_tones)
    assert info.get("exposure_gain", 1.0) > 1.05, info  # still brightened (measured 1.156)
    after = [skin_tone((out * 255 + 0.5).astype(np.uint8), face) for face in p.faces]
    lifts = [a.L - b.L for a, b in zip(after, p.skin_tones) if a is not None and b is not None]
    assert len(lifts) == 2 and max(lifts) <= compose.EXPOSURE_SKIN_LIFT + 1.5, lifts  # measured +5.4, +4.7


@pytest.mark.parametrize("photo", ["group_4faces_diverse_skin_01.jpg", "two_people_01.jpg"])
def test_each_head_keeps_its_own_hair_lightness(load_media, photo):
    """Hair was painted at one lightness for the whole photo (the median of all hair) and from the abstracted layer:
    on the group, the blond women's hair came out 23 L* darker and the black hair 26 L* lighter than in the photo;
    two_people_01's short dark hair (a thin cap that the abstraction merged into the light wall) came out 29 L*
    lighter, a bald crown. Each head's hair is now the photo's own, through the character's tone map (lifted at most
    compose.HAIR_LIFT), and lighter hair stays lighter."""
    img = load_media(photo)
    f = 1024 / max(img.shape[:2])
    img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else img
    hair = perceive(img, load_config().perception).hair > 0.5
    out = Stylizer()(img, StylizeParams(character="classic", warp=0.0)).image
    src_L, out_L = rgb_to_lab(img)[..., 0], rgb_to_lab(out)[..., 0]
    n, heads = cv2.connectedComponents(hair.astype(np.uint8))
    found = []
    for i in range(1, n):
        part = heads == i
        if part.sum() >= 800:
            found.append((float(np.median(src_L[part])), float(np.median(out_L[part]))))
    assert found
    for own, drawn in found:
        assert -6.0 <= drawn - own <= 16.0  # measured -2.6 .. +12.0 (before: -23.1 .. +25.8 on the group, +29.1)
    found.sort()
    assert all(b[1] > a[1] for a, b in zip(found, found[1:]) if b[0] - a[0] > 10.0)


def test_a_lock_cut_off_by_a_few_pixels_is_its_heads_hair():
    """hair_shading's heads (`compose._per_head`): a lock of hair the mask cut off from its head by 4 px took its own
    levels and, round it, a square of its own tone (a box of another brown beside the medium-skin portrait's cheek,
    there with the clean photo and not with a grey level of noise: the teacher 39.1 -> 40.0 dB under noise). Pieces
    within 2 HAIR_JOIN px of each other are one head; a head 30 px away keeps its own."""
    sel = np.zeros((120, 200), bool)
    sel[20:100, 20:80] = True  # a head's hair
    sel[40:60, 84:90] = True  # a lock 4 px beside it
    sel[20:100, 120:180] = True  # another head's, 40 px away
    join = int(round(compose.HAIR_JOIN))
    heads, boxes = compose._per_head(sel, 9, join)
    assert len(boxes) == 2
    assert heads[50, 86] == heads[50, 50] != heads[50, 150]
    assert heads[30, 86] == heads[50, 50]  # the rim round the lock is the head's too
    assert len(compose._per_head(sel, 9)[1]) == 3  # without joining: the lock on its own


def test_heads_are_whose_hair_not_the_masks_pieces():
    """With the hair's own labels (`whose`, perception.hair_and_heads) hair_shading's heads are whose hair a pixel
    is: two heads whose masks touch are two, and a face's hair in two pieces far apart is one head; the rim round
    each head takes its label."""
    sel = np.zeros((120, 240), bool)
    sel[20:100, 20:80] = True  # one head's hair
    sel[20:100, 80:140] = True  # another's, touching it
    sel[20:40, 200:230] = True  # a lock of the first, far away
    whose = np.zeros(sel.shape, np.uint16)
    whose[:, :80], whose[:, 80:180], whose[:, 180:] = 3, 5, 3  # labels as hair_and_heads gives them (1 + face index)
    heads, boxes = compose._per_head(sel, 9, 3, whose)
    assert len(boxes) == 2 and len(compose._per_head(sel, 9, 3)[1]) == 2  # by the pieces: the touching two as one
    assert heads[50, 50] == heads[30, 210] != heads[50, 100]
    assert heads[50, 145] == heads[50, 100] and heads[12, 50] == heads[50, 50]  # the rims, 9 px
    first = dict(boxes)[heads[50, 50]]
    assert (first[0].start, first[0].stop, first[1].start, first[1].stop) == (20, 100, 20, 230)


def test_near_hue_pulls_a_colour_to_within_reach_of_its_heads():
    ta, tb = np.full((1, 3), 20.0, np.float32), np.full((1, 3), 30.0, np.float32)
    a = np.array([[24.0, 20.0 + 30.0, -10.0]], np.float32)
    b = np.array([[33.0, 30.0 + 40.0, 30.0]], np.float32)
    na, nb = compose._near_hue(a, b, ta, tb, 10.0)
    assert np.allclose([na[0, 0], nb[0, 0]], [24.0, 33.0])  # within reach: kept
    assert np.allclose([na[0, 1], nb[0, 1]], [26.0, 38.0], atol=1e-4)  # 50 away along (3, 4): brought to 10
    assert np.allclose([na[0, 2], nb[0, 2]], [10.0, 30.0], atol=1e-4)


def test_a_pale_patch_in_red_hair_is_painted_the_hairs_colour():
    """hair_shading moves the layer's chroma by the head's offset, and the abstraction's pale grey over a red crown's
    shine came out an olive patch in orange hair; a hair's colour now stays within HAIR_HUE_REACH of its head's.
    A red head with a pale patch in its layer: the patch's hue within 12 degrees of the rest (measured 1.1; without
    the reach 34, a grey)."""
    img = np.zeros((160, 160, 3), np.float32)
    img[:] = (0.75, 0.8, 0.9)
    img[30:140, 30:130] = (0.62, 0.33, 0.14)  # red hair
    layer = img.copy()
    layer[60:90, 60:100] = (0.78, 0.76, 0.72)  # the abstraction's pale grey over its shine
    hair = np.zeros(img.shape[:2], np.float32)
    hair[30:140, 30:130] = 1.0
    ch = load_character("classic", load_config())

    def hues():
        out, _ = compose.hair_shading(img, layer, hair, ch, strength=1.0, strands=False)
        lab = rgb_to_lab(out)
        patch, rest = lab[65:85, 65:95], lab[100:130, 40:120]
        return [float(np.degrees(np.arctan2(np.median(x[..., 2]), np.median(x[..., 1])))) for x in (patch, rest)]

    patch, rest = hues()
    assert abs(patch - rest) < 12.0, (patch, rest)
    reach = compose.HAIR_HUE_REACH
    try:
        compose.HAIR_HUE_REACH = 1e9
        patch, rest = hues()
    finally:
        compose.HAIR_HUE_REACH = reach
    assert abs(patch - rest) > 20.0, (patch, rest)


def test_a_blonde_among_brunettes_at_night_keeps_her_hair(load_media, monkeypatch):
    """The night group (group_night_flash_01): the heads' hair masks join through the black round them, and
    hair_shading took the joined piece for one head: the blonde at the left was painted at her dark-haired
    neighbours' lightness (median L* 16 where her photo's hair is 43). Heads are now whose hair each pixel is
    (perception.hair_and_heads): hers is painted at her own (measured 43.8 at warp 0; 16.3 with the mask's pieces)."""
    img = load_media("group_night_flash_01.jpg")
    p = perceive(img, load_config().perception)
    i = min(range(len(p.faces)), key=lambda k: p.faces[k].box.x0)
    hers = (p.hair_heads == i + 1) & (p.hair > 0.5)
    assert hers.sum() > 1500  # measured 2503 px at 500 x 334
    own = float(np.median(rgb_to_lab(img)[..., 0][hers]))
    assert own > 35.0  # measured 43.0
    params = StylizeParams(character="classic", warp=0.0)
    painted = float(np.median(rgb_to_lab(Stylizer()(img, params).image)[..., 0][hers]))
    assert abs(painted - own) < 8.0, (own, painted)
    shading = compose.hair_shading
    monkeypatch.setattr(compose, "hair_shading", lambda *a, **k: shading(*a, **{**k, "heads": None}))
    joined = float(np.median(rgb_to_lab(Stylizer()(img, params).image)[..., 0][hers]))
    assert joined < own - 15.0, (own, joined)


@pytest.mark.parametrize("coarse", [1, 2])
def test_hair_is_shaded_in_its_own_box(load_media, monkeypatch, coarse):
    """hair_shading paints in the hair's box, grown by what its blurs and dilations read (two people: 5 % of the
    photo is hair): where the hair is, the same pixels as when it works over the whole image, the strands the
    same, and outside the box the layer as it was (over the whole image it went through L*a*b* and back: up to 0.8
    of a grey level off)."""
    img = load_media("two_people_01.jpg")
    img = cv2.resize(img, (768, 768 * img.shape[0] // img.shape[1] // 2 * 2), interpolation=cv2.INTER_AREA)
    hair = perceive(img, load_config().perception).hair
    photo, layer = img.astype(np.float32) / 255.0, cv2.GaussianBlur(img, (0, 0), 2.0).astype(np.float32) / 255.0
    noir = load_character("noir", load_config())
    out, strands = compose.hair_shading(photo, layer, hair, noir, 0.9, coarse=coarse)
    box = compose._hair_box(np.clip(hair, 0, 1), 3.0, coarse)
    outside = np.ones(hair.shape, bool)
    outside[box] = False
    assert 0.3 < outside.mean() < 0.9  # measured 0.69
    assert np.array_equal(out[outside], layer[outside])
    monkeypatch.setattr(compose, "_hair_box", lambda m, sigma, coarse: (slice(None), slice(None)))
    whole, whole_strands = compose.hair_shading(photo, layer, hair, noir, 0.9, coarse=coarse)
    assert np.array_equal(out[hair > 0], whole[hair > 0]) and np.array_equal(strands, whole_strands)
    assert np.abs(out - layer)[hair > 0.5].max() > 0.1  # the hair was painted


@pytest.mark.parametrize("character", ["classic", "noir"])
def test_black_hair_has_a_band_of_light_not_grey_patches(load_media, character):
    """Pichai's black, salt-and-pepper hair was painted with a camouflage of light grey patches: the highlight was cut
    from lightly smoothed light and lifted black by 17 L*. It is now cut from smoother light, specks are dropped and
    the lift is compose.HAIR_BAND_LIFT: few hair pixels are far above the hair's own middle."""
    img = load_media("portrait_glasses_beard_brown_skin_01.jpg")
    f = 1024 / max(img.shape[:2])
    img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else img
    hair = perceive(img, load_config().perception).hair > 0.7
    L = rgb_to_lab(Stylizer()(img, StylizeParams(character=character, warp=0.0)).image)[..., 0][hair]
    assert hair.sum() > 5000
    assert float(np.mean(L > np.median(L) + 12.0)) < 0.09  # measured 0.066 / 0.062 (before: 0.137 / 0.098)


def test_eyes_and_lips_are_painted_in_their_own_boxes(load_media):
    """eye_accents and lip_tint paint each iris and each mouth in its own box: the same pixels as on the whole image
    (the iris's box holds its eye's opening, whose polygon a box would otherwise clip and draw differently), on a
    crop of it with the faces moved into it (the realtime step paints only its faces' eyes-and-lips boxes), and in
    uint8 as in float rounded; outside the lips nothing moves (a whole-image L*a*b* round trip used to move the
    person layer by up to 0.9 grey levels)."""
    from studio.color import to_u8
    from studio.perception.faces import get_face_backend

    img = cv2.resize(load_media("portrait_glasses_beard_brown_skin_01.jpg"), None, fx=0.5, fy=0.5,
                     interpolation=cv2.INTER_AREA)
    cfg = load_config()
    faces = get_face_backend(cfg.perception.face_backend, cfg.perception).detect(img)
    assert faces and faces[0].has_irises and faces[0].box.width > 60
    x = img.astype(np.float32) / 255.0
    pastel = load_character("pastel", cfg)
    eyes, lips = compose.eye_accents(x, faces, pastel, 0.9), compose.lip_tint(x, faces, pastel, 0.9)
    moved = np.abs(eyes - x).max(axis=-1) > 0
    assert 0 < moved.mean() < 0.01  # two irises
    tinted = np.abs(lips - x).max(axis=-1) > 0
    assert 0 < tinted.mean() < 0.01  # the lips
    ys, xs = np.nonzero(tinted | moved)
    whole = (slice(max(0, ys.min() - 40), ys.max() + 40), slice(max(0, xs.min() - 40), xs.max() + 40))
    crop = [f.cropped(whole) for f in faces]
    np.testing.assert_array_equal(compose.eye_accents(x[whole], crop, pastel, 0.9), eyes[whole])
    np.testing.assert_allclose(compose.lip_tint(x[whole], crop, pastel, 0.9), lips[whole], atol=1e-6)
    np.testing.assert_array_equal(lips[~tinted], x[~tinted])
    assert np.abs(lips - x).max() > 0.05  # and the lips themselves are tinted
    u8 = compose.lip_tint(compose.eye_accents(img.copy(), faces, pastel, 0.9), faces, pastel, 0.9)
    assert u8.dtype == np.uint8
    ref = to_u8(compose.lip_tint(eyes, faces, pastel, 0.9))
    assert np.abs(u8.astype(int) - ref).max() <= 1
