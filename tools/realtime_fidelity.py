"""How close the realtime step (realtime.student) is to the classic teacher, on held-out photos: PSNR of the
student alone, with the face strokes, and with the face strokes, the contour lines, the people's outline and the
faces' fine detail (the step as the Video and Webcam tabs draw it), against the teacher's
output of the same photo and factors; the whole step's SSIM, and how flat it is beside the teacher (the share of
pixels whose grey Laplacian is under 2, studio.quality's flat share). Prints a table (and the ms the ink took per
frame).

    .venv/bin/python tools/realtime_fidelity.py                          # 3 characters x 7 held-out photos, 512 px
    .venv/bin/python tools/realtime_fidelity.py --side 384 --photos portrait_dark_skin_01.jpg --save /tmp/fid
    .venv/bin/python tools/realtime_fidelity.py --characters classic --student /tmp/student-classic   # another student
    .venv/bin/python tools/realtime_fidelity.py --side 1024 --upsample guided    # frames over the working size
    .venv/bin/python tools/realtime_fidelity.py --no-flat          # the network's output as it is (no flatten)
    .venv/bin/python tools/realtime_fidelity.py --no-outline       # without the people's outline
    .venv/bin/python tools/realtime_fidelity.py --no-detail        # without the faces' fine detail from the photo
    .venv/bin/python tools/realtime_fidelity.py --no-skin          # without the skin lifted to the teacher's

For developers (docs/PERFORMANCE.md, "Ink in the realtime path"). The default photos are the test media's
non-commercial ones, which training.photo_set leaves out of the students' training set: truly held out.
`--save DIR` writes photo / student / realtime step / teacher side by side per case, to look at.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PHOTOS = ["portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg", "portrait_bangs_red_hair_01.jpg",
          "portrait_medium_skin_01.jpg", "portrait_dark_background_01.jpg", "bg_street_night_01.jpg",
          "bg_lake_mountains_01.jpg"]


def psnr(a, b) -> float:
    import numpy as np

    return float(-10 * np.log10(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2) / 255.0 ** 2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--characters", nargs="+", default=["classic", "pastel", "noir"])
    ap.add_argument("--photos", nargs="+", default=PHOTOS, help="file names in the media folder's images/")
    ap.add_argument("--side", type=int, default=512, help="long side the photos are fitted to (multiple of 16)")
    ap.add_argument("--factor", type=float, default=0.6, help="line, texture and color factor")
    ap.add_argument("--media", type=Path, default=Path(os.environ.get("TEST_MEDIA_DIR", REPO.parent / "shared" / "data")))
    ap.add_argument("--save", type=Path, help="write side-by-side PNGs here")
    ap.add_argument("--student", help="student folder for the (single) character instead of students/<name>/")
    ap.add_argument("--work-side", type=int, default=None, help="the long side the student runs at (default: "
                    "realtime.guided.WORK_SIDE)")
    ap.add_argument("--upsample", choices=("linear", "guided"), default="linear",  # realtime.student.UPSAMPLE
                    help="how frames larger than the working size come back from it (realtime.guided)")
    ap.add_argument("--no-detail", action="store_true", help="without the faces' fine detail from the photo "
                    "(realtime.student.face_details)")
    ap.add_argument("--no-skin", action="store_true", help="without the skin brought to the teacher's lightness "
                    "(realtime.student.lift_skin)")
    ap.add_argument("--no-outline", action="store_true", help="without the people's outline "
                    "(realtime.student.outline_ink)")
    ap.add_argument("--no-flat", action="store_true", help="the network's own output, not flattened "
                    "(realtime.guided.flatten)")
    args = ap.parse_args(argv)
    if args.student and len(args.characters) != 1:
        ap.error("--student needs exactly one --characters")

    import cv2
    import numpy as np
    import torch

    from realtime.student import StudentStylizer, stylize_frame
    from studio import StylizeParams, Stylizer, load_config
    from studio.io import load_image
    from studio.perception.faces import get_face_backend
    from studio.quality import flat_share
    from training.losses import ssim as ssim_nchw

    def ssim(a, b) -> float:
        """SSIM as the students' reports measure it (training.losses: 11x11 Gaussian window, RGB in [0, 1])."""
        t = lambda x: torch.from_numpy(x.astype(np.float32) / 255.0).permute(2, 0, 1)[None]  # noqa: E731
        return float(ssim_nchw(t(a), t(b)))

    cfg = load_config()
    teacher = Stylizer(cfg)
    detector = get_face_backend(cfg.perception.face_backend, cfg.perception)
    f = args.factor
    rows = []
    for name in args.characters:
        step = StudentStylizer(cfg, name, "onnxruntime", args.student, line=f, texture=f, color=f)
        for photo in args.photos:
            img = load_image(args.media / "images" / photo)
            h, w = img.shape[:2]
            s = args.side / max(h, w)
            img = np.ascontiguousarray(cv2.resize(img, (max(16, round(w * s) // 16 * 16), max(16, round(h * s) // 16 * 16)),
                                                  interpolation=cv2.INTER_AREA))
            target = teacher(img, StylizeParams(character=name, line=f, texture=f, color=f)).image
            faces = detector.detect(img)
            geo, warp, fac = step.character.geometry, step.factors["warp"], step._factors
            ink = (step.factors["line"], step.character.line_weight, step._line_rgb)
            up = dict(upsample=args.upsample, flat=not args.no_flat, **({"work_side": args.work_side} if args.work_side else {}))
            alone = stylize_frame(step.engine, img, faces, geo, warp, fac, **up)
            t0 = time.perf_counter()
            strokes = stylize_frame(step.engine, img, faces, geo, warp, fac, ink, **up)
            t1 = time.perf_counter()
            full = stylize_frame(step.engine, img, faces, geo, warp, fac, ink, step.factors["background_line"],
                                 outline=not args.no_outline, detail=not args.no_detail,
                                 skin=None if args.no_skin else step.character, **up)
            ms = ((time.perf_counter() - t1) - (t1 - t0)) * 1e3  # what the contours add
            rows.append((name, photo, len(faces), psnr(img, target), psnr(alone, target), psnr(strokes, target),
                         psnr(full, target), ms, ssim(full, target), flat_share(full), flat_share(target)))
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                sheet = np.hstack([img, alone, full, target])[..., ::-1]
                cv2.imwrite(str(args.save / f"{name}_{Path(photo).stem}.png"), sheet)
    print(f"PSNR against each character's teacher (dB), {args.side} px{', not flattened' if args.no_flat else ''}{', no outline' if args.no_outline else ''}, line/texture/color {f:g}, each character's warp")
    print("| character | photo | faces | photo itself | student | + face strokes | + contours, outline, face detail | their ms | "
          "SSIM (+ contours) | flat share: realtime / teacher |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {Path(r[1]).stem} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.2f} | {r[7]:.0f} | "
              f"{r[8]:.3f} | {r[9]:.2f} / {r[10]:.2f} |")
    groups = [(f"mean, {c}", [r for r in rows if r[0] == c]) for c in args.characters] if len(args.characters) > 1 else []
    for label, group in groups + [(f"mean of {len(rows)}", rows)]:
        mean = [sum(r[k] for r in group) / len(group) for k in range(3, 11)]
        print(f"| {label} | | | {mean[0]:.2f} | {mean[1]:.2f} | {mean[2]:.2f} | {mean[3]:.2f} | {mean[4]:.0f} | "
              f"{mean[5]:.3f} | {mean[6]:.2f} / {mean[7]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
