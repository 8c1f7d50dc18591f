"""realtime.memory.settle_malloc: glibc's malloc kept from mapping and unmapping a frame's buffers (one arena for
all the stream's threads, frame-sized buffers from the heap), applied only where the user has not set it. Each
case runs in a fresh interpreter: the settings are process-wide."""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only")

ROOT = Path(__file__).resolve().parents[1]
PROBE = r"""
import ctypes, re, sys, tempfile, threading
import numpy as np
from realtime.memory import settle_malloc
print("settled", settle_malloc())
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
def info():
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        fp = libc.fopen(f.name.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        return open(f.name).read()
def mmapped(text):
    return int(re.search(r'<total type="mmap" count="(\d+)"', text).group(1))
before = info()
frame = np.ones((1080, 1920, 3), np.float32)
after = info()
print("mmapped", mmapped(after) - mmapped(before))  # the frame's own mapping, or none
kept = []
def work():  # a stream stage's buffers, in its own thread
    for _ in range(3):
        kept.append(np.ones((1080, 1920, 3), np.float32))  # 24.9 MB: a 1080p float frame
        kept.pop()
threads = [threading.Thread(target=work) for _ in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
print("heaps", len(re.findall(r'<heap nr="\d+">', info())))
"""


def probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def test_settled_malloc_keeps_one_heap_and_frames_off_mmap():
    got = probe()
    assert got == {"settled": "True", "heaps": "1", "mmapped": "0"}, got


def test_the_users_own_malloc_settings_are_left_alone():
    """With the user's own GLIBC_TUNABLES nothing is set: the stage threads get arenas
    of their own and a new 1080p frame is mmapped, as without settle_malloc."""
    got = probe(GLIBC_TUNABLES="glibc.malloc.arena_max=8")
    assert got["settled"] == "False" and int(got["heaps"]) > 1 and int(got["mmapped"]) >= 1, got
