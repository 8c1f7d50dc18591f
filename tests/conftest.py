"""Shared fixtures: the real test media in ../shared/data (or $TEST_MEDIA_DIR), skipped when absent."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def media_dir() -> Path:
    path = Path(os.environ.get("TEST_MEDIA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "MANIFEST.md").exists():
        pytest.skip(f"test media not found at {path} (set TEST_MEDIA_DIR)")
    return path


@pytest.fixture(scope="session")
def load_media(media_dir):
    from studio.io import load_image

    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = load_image(media_dir / "images" / name)
        return cache[name].copy()

    return load


@pytest.fixture(scope="session")
def video_clip(media_dir):
    """`video_clip(name)`: the path of a clip in <media>/videos; the test is skipped when it is missing."""

    def find(name: str) -> Path:
        path = media_dir / "videos" / name
        if not path.is_file():
            pytest.skip(f"{path} missing")
        return path

    return find


@pytest.fixture(scope="session")
def student(tmp_path_factory) -> Path:
    """The shipped classic student, else a random one (the file handling does not depend on the weights)."""
    shipped = REPO / "students" / "classic"
    if (shipped / "model.safetensors").is_file():
        return shipped
    pytest.importorskip("torch")
    from studio.models.student_unet import StudentConfig, StudentUNet

    return StudentUNet(StudentConfig(width=8)).save_pretrained(tmp_path_factory.mktemp("student") / "classic")
