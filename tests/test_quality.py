"""The quality yardstick (studio.quality, dlib's models: requirements-test.txt): its measures and its report."""
import json

import cv2
import numpy as np
import pytest

from studio import quality

dlib = pytest.importorskip("dlib", reason="the yardstick needs dlib: pip install -r requirements-test.txt")

def test_flat_and_ink_shares():
    flat = np.full((64, 64, 3), 180, np.uint8)
    assert quality.flat_share(flat) == 1.0 and quality.ink_share(flat) == 0.0
    inked = flat.copy()
    cv2.line(inked, (5, 32), (58, 32), (20, 20, 20), 1)
    assert 0.0 < quality.ink_share(inked) < 0.05 and quality.flat_share(inked) < 1.0
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert quality.flat_share(noise) < 0.2


def test_the_benchmark_prints_a_table_and_json(media_dir, capsys):
    rc = quality.main(["--media", str(media_dir), "--photos", "portrait_medium_skin_01.jpg", "--characters",
                       "classic", "--json"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    photo = json.loads(out[0])
    assert photo["photo"] == "portrait_medium_skin_01.jpg" and len(photo["faces"]) == 1
    assert 0.0 < photo["faces"][0]["distance"] < 1.0 and photo["faces"][0]["found"]
    assert set(json.loads(out[1])["classic"]) >= {"identity", "distance_median", "found_again", "skin_shift_median"}
    assert out[2].startswith("| character |") and out[4].startswith("| classic | 1 | 1 |")


def test_an_unreadable_photo_is_one_error_line_and_the_others_are_measured(media_dir, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    (images / "broken.jpg").write_bytes(b"not an image")
    (images / "p.jpg").write_bytes((media_dir / "images" / "portrait_medium_skin_01.jpg").read_bytes())
    rc = quality.main(["--media", str(tmp_path), "--characters", "classic"])
    out, err = capsys.readouterr()
    assert rc == 0 and "| classic | 1 | 1 |" in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0], errors
