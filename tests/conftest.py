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
