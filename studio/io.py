"""Safe image loading and saving.

`load_image` accepts a path or bytes and returns an RGB uint8 array. It applies the EXIF orientation,
flattens transparency onto white, converts 16-bit, grayscale, palette and CMYK images, and refuses
files that are empty, not images, truncated, or larger than the pixel limit (checked from the header,
before the pixels are decoded). Errors are `ImageLoadError` with a one-line message.

`save_image` writes atomically, as does every writer that goes through `atomic_path` / `atomic_write` (a temporary
name beside the target, then a rename), so a crash never leaves half a file under the real name.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


class ImageLoadError(ValueError):
    """The input could not be used as an image; the message says why in one line."""


def _open(source: Union[str, os.PathLike, bytes]) -> tuple[Image.Image, str]:
    if isinstance(source, (bytes, bytearray)):
        name = "<bytes>"
        if len(source) == 0:
            raise ImageLoadError("empty input (0 bytes)")
        fh = io.BytesIO(source)
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise ImageLoadError(f"{name}: no such file")
        if path.is_dir():
            raise ImageLoadError(f"{name}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageLoadError(f"{name}: empty file (0 bytes)")
        fh = path  # opened by PIL, which then closes it after loading or on close()
    try:
        img = Image.open(fh)
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not an image (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{name}: too large ({exc})") from None
    return img, name


def load_image(source: Union[str, os.PathLike, bytes], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image as RGB uint8 (H, W, 3); raise ImageLoadError with a clear message otherwise."""
    img, name = _open(source)
    with img:  # the file is closed whatever happens (a studio serving for days must not leak handles)
        w, h = img.size
        if w <= 0 or h <= 0:
            raise ImageLoadError(f"{name}: image has no pixels ({w}x{h})")
        if w * h > max_pixels:
            raise ImageLoadError(
                f"{name}: {w}x{h} is {w * h / 1e6:.1f} megapixels, over the limit of {max_pixels / 1e6:.0f}; "
                "downscale it first")
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            img.load()
            loaded = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageLoadError(f"{name}: corrupt or truncated image ({exc})") from None
        except Image.DecompressionBombError as exc:
            raise ImageLoadError(f"{name}: too large ({exc})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous
        return _to_rgb(loaded, name)


def output_folder(path: Union[str, os.PathLike], flag: str = "--out") -> Path:
    """The folder `path`, created with its parents; a one-line ValueError when it cannot be one (it is a file, or a
    file is where one of its parents would be, or it may not be written)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{flag} {p} is a file, not a folder") from None
    except NotADirectoryError:
        raise ValueError(f"{flag} {p}: a part of that path is a file, not a folder") from None
    except OSError as exc:
        raise ValueError(f"{flag} {p}: cannot create that folder ({exc.strerror or exc})") from None
    return p


def error_line(src, why) -> str:
    """The one line printed for an input that could not be done: `error: SRC: reason`, SRC said once (the reasons
    of load_image and of most file errors start with the path themselves)."""
    text = " ".join(str(why).split())
    for prefix in (f"{src}: ", f"{Path(str(src)).name}: "):
        text = text.removeprefix(prefix)
    return f"error: {src}: {text}"


def _to_rgb(img: Image.Image, name: str = "image") -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":  # a float image (TIFF): its finite range stretched to 0-255; NaN and infinities as its darkest
        arr = np.asarray(img, dtype=np.float64)
        finite = np.isfinite(arr)
        if not finite.any():
            raise ImageLoadError(f"{name}: no finite pixel values (a float image of NaN or infinities)")
        lo, hi = float(arr[finite].min()), float(arr[finite].max())
        arr = np.where(finite, (arr - lo) / (hi - lo + 1e-12) * 255.0, 0.0)
        return np.repeat(np.clip(arr + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr)


TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """A temporary path beside `path` (same folder: the rename is atomic; named for this process and thread, so
    two writers never share it) to write a file or fill a folder at. When the block ends without an error it
    takes `path`'s place (a folder already there is swapped out, then removed); otherwise it is removed.

        with atomic_path(out / "model.onnx") as tmp:
            torch.onnx.export(model, args, str(tmp))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{threading.get_ident()}"
    tmp = path.with_name(f"{TMP_PREFIX}{tag}-{path.name}")
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            old = path.with_name(f"{TMP_PREFIX}old-{tag}-{path.name}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes]) -> Path:
    """Write text (UTF-8) or bytes to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)


def being_written(path: Union[str, os.PathLike]) -> bool:
    """Whether some writer is writing `path` now (an `atomic_path` temporary of it exists)."""
    path = Path(path)
    return any(path.parent.glob(f"{TMP_PREFIX}*-{path.name}"))


def save_image(image: np.ndarray, path: Union[str, os.PathLike]) -> Path:
    """Save an RGB uint8 array as PNG (or by suffix) atomically."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        Image.fromarray(image).save(fh, format=fmt)
    return path



_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, max_len: int = 64) -> str:
    """A user-given name made safe for a single path component (no separators, no dot-files)."""
    cleaned = _SAFE.sub("_", name.strip()).strip("._")
    if not cleaned:
        raise ValueError(f"name {name!r} has no usable characters")
    return cleaned[:max_len]


def iter_image_files(paths: list[Union[str, os.PathLike]]) -> list[Path]:
    """Expand folders to the image files directly inside them (sorted); files are kept as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def unique_output(out_dir: Path, src: Path, taken: set[str], suffix: str = ".png", fallback: str = "image") -> Path:
    """`<out_dir>/<src stem><suffix>`, numbered `-2`, `-3`, … when another input already took that name; the stem is
    shortened so that the name, number included, stays within the file-name limit (255 bytes)."""
    stem = src.stem or fallback
    name, i = _within_limit(stem, suffix), 1
    while name in taken:
        i += 1
        name = _within_limit(stem, f"-{i}{suffix}")
    taken.add(name)
    return out_dir / name


NAME_MAX = 255  # bytes in a file name (ext4, APFS, NTFS in UTF-16 units: 255 bytes is within all)


def _within_limit(stem: str, tail: str) -> str:
    room = NAME_MAX - len(tail.encode())
    while len(stem.encode()) > room:  # whole characters only: a UTF-8 sequence is never cut
        stem = stem[:-1]
    return stem + tail
