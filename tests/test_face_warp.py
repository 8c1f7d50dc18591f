"""Face warp moves the landmarks as configured, smoothly, without tearing, and only near the face."""
from dataclasses import replace

import cv2
import numpy as np
import pytest

from studio.characters import Geometry
from studio.config import load_config
from studio.perception import perceive
from studio.perception.faces import FACE_OVAL, LEFT_EYE, RIGHT_EYE
from studio.stylize.face_warp import warp_field

NEUTRAL = Geometry(eye_scale=1.0, face_width=1.0, jaw=1.0, chin=1.0, eye_height=0.0)


@pytest.fixture(scope="module")
def portrait(load_media):
    img = load_media("portrait_light_skin_asian_01.jpg")
    img = cv2.resize(img, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    faces = perceive(img, load_config().perception).faces
    assert len(faces) == 1 and faces[0].landmarks is not None
    return img, faces


def eye_width(lm, idx):
    return float(np.ptp(lm[list(idx), 0]))


@pytest.mark.parametrize("scale,strength", [(1.3, 1.0), (1.3, 0.5), (1.5, 1.0)])
def test_eyes_grow_by_the_configured_factor(portrait, scale, strength):
    img, faces = portrait
    field = warp_field(img.shape, faces, replace(NEUTRAL, eye_scale=scale), strength)
    moved = field.forward(faces[0].landmarks)
    expect = 1.0 + (scale - 1.0) * strength
    for idx in (LEFT_EYE, RIGHT_EYE):
        got = eye_width(moved, idx) / eye_width(faces[0].landmarks, idx)
        assert abs(got - expect) < 0.08 * expect, (got, expect)


def test_eye_height_and_jaw(portrait):
    img, faces = portrait
    lm = faces[0].landmarks
    ew = eye_width(lm, LEFT_EYE)
    # These jaw corners sit a quarter of the way from the mouth to the chin, where a third of the jaw factor applies:
    # at jaw 0.8 they came 5 % closer (0.948 on one mesh crop, 0.952 on the averaged mesh), at 0.6 about 10 %
    field = warp_field(img.shape, faces, replace(NEUTRAL, eye_height=-0.3, jaw=0.6), 1.0)
    moved = field.forward(lm)
    dy = moved[list(LEFT_EYE), 1].mean() - lm[list(LEFT_EYE), 1].mean()
    assert -0.4 * ew < dy < -0.2 * ew
    jaw_pts = [172, 397]  # jaw corners below the mouth
    before = abs(lm[jaw_pts[0], 0] - lm[jaw_pts[1], 0])
    after = abs(moved[jaw_pts[0], 0] - moved[jaw_pts[1], 0])
    assert after < 0.95 * before


def test_strength_zero_is_identity(portrait):
    img, faces = portrait
    field = warp_field(img.shape, faces, Geometry(), 0.0)
    assert field.is_identity and np.array_equal(field.apply(img), img)


def test_no_tearing_and_local(portrait):
    img, faces = portrait
    field = warp_field(img.shape, faces, Geometry(eye_scale=1.5, face_width=0.85, jaw=0.75, chin=1.1), 1.0)
    # The map x -> x + D(x) must not fold: its Jacobian determinant stays positive everywhere.
    dxx = np.gradient(field.dx, axis=1)
    dyy = np.gradient(field.dy, axis=0)
    dxy = np.gradient(field.dx, axis=0)
    dyx = np.gradient(field.dy, axis=1)
    det = (1 + dxx) * (1 + dyy) - dxy * dyx
    assert det.min() > 0.2
    # Smooth: no jump between neighbouring pixels much larger than a pixel. Eyes grown by 1.5 stretch the skin beside
    # them about twice (a step of 0.99 px on one mesh crop, 1.02 on the averaged mesh); a tear would be many pixels.
    assert np.abs(np.diff(field.dx, axis=1)).max() < 1.2 and np.abs(np.diff(field.dy, axis=0)).max() < 1.2
    # Local: far from the face nothing moves.
    oval = faces[0].landmarks[list(FACE_OVAL)]
    far = np.ones(img.shape[:2], bool)
    x0, y0 = oval.min(0) - np.ptp(oval, 0) * 0.6
    x1, y1 = oval.max(0) + np.ptp(oval, 0) * 0.6
    far[max(0, int(y0)):int(y1), max(0, int(x0)):int(x1)] = False
    assert np.abs(field.dx[far]).max() == 0 and np.abs(field.dy[far]).max() == 0
    warped = field.apply(img)
    assert np.array_equal(warped[far], img[far])


def test_small_faces_keep_their_shape(portrait):
    """The warp fades in over face widths WARP_FACE_PX: the same face shrunk to a crowd's size is not warped (its
    mesh is off by more than the reshaping), and halfway it is warped by less."""
    from studio.stylize.face_warp import WARP_FACE_PX

    img, faces = portrait
    geo = replace(NEUTRAL, eye_scale=1.5)

    def growth(width):
        k = width / faces[0].box.width
        face = faces[0].scaled(k)
        small = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        field = warp_field(small.shape, [face], geo, 1.0)
        moved = field.forward(face.landmarks)
        return eye_width(moved, LEFT_EYE) / eye_width(face.landmarks, LEFT_EYE), field

    lo, hi = WARP_FACE_PX
    g_small, field_small = growth(lo - 2)
    assert field_small.is_identity and g_small == 1.0
    g_mid, _ = growth((lo + hi) / 2)
    g_full, _ = growth(hi + 10)
    assert 1.05 < g_mid < g_full - 0.1 and g_full > 1.3, (g_mid, g_full)


def test_the_spline_keeps_blas_on_the_calling_thread_and_its_field(portrait):
    """OpenBLAS's helper threads spun after each of the spline's small products and took the realtime stream's
    other core; warp_field leaves numpy's and scipy's OpenBLAS on one thread, and the field is the one that two
    threads give."""
    from threadpoolctl import threadpool_info, threadpool_limits

    img, faces = portrait
    geo = Geometry(eye_scale=1.4, face_width=0.9, jaw=0.8, chin=1.05)
    one = warp_field(img.shape, faces, geo, 1.0)
    openblas = [i for i in threadpool_info() if i["internal_api"] == "openblas"]
    assert {i["prefix"] for i in openblas} >= {"libopenblas", "libscipy_openblas"}  # numpy's, scipy's
    assert all(i["num_threads"] == 1 for i in openblas), openblas
    with threadpool_limits(2, user_api="blas"):
        two = warp_field(img.shape, faces, geo, 1.0)
        assert all(i["num_threads"] == 2 for i in threadpool_info()
                   if i["internal_api"] == "openblas" and i.get("threading_layer") == "pthreads")
    assert np.array_equal(one.dx, two.dx) and np.array_equal(one.dy, two.dy)


@pytest.mark.parametrize("across", [None, 20])
def test_the_fields_box_holds_its_displacements_and_warps_the_same(portrait, across):
    """warp_field's `box` (the faces' neighbourhoods) holds every non-zero displacement, so `apply` and
    `is_identity` look only there; the frame warped through the box is the frame warped by scanning the field, bit
    for bit. A field without faces is the identity, and an image comes back as it is."""
    from studio.stylize.face_warp import WarpField

    img, faces = portrait
    field = warp_field(img.shape, faces, Geometry(eye_scale=1.4, face_width=0.9, jaw=0.8, chin=1.05), 1.0,
                       across=across)
    y0, y1, x0, x1 = field.box
    outside = np.ones(img.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert not field.is_identity and (field.dx[outside] == 0).all() and (field.dy[outside] == 0).all()
    assert (y1 - y0) * (x1 - x0) < 0.8 * outside.size  # a box, not the frame
    scanned = WarpField(field.dx, field.dy)
    np.testing.assert_array_equal(field.apply(img), scanned.apply(img))
    none = warp_field(img.shape, [], NEUTRAL, 1.0)
    assert none.is_identity and none.apply(img) is img
