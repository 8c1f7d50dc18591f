#!/bin/sh
# Run a command on an emulated x86 CPU class: QEMU's user-mode emulator (TCG) with the CPU model given, so that
# onnxruntime, OpenCV and numpy pick that class's kernels (they ask CPUID, which QEMU answers).
#
#     tools/emulated_cpu.sh [CPU_MODEL] -- COMMAND [ARGS...]
#     tools/emulated_cpu.sh EPYC-Rome -- .venv/bin/python -m pytest -q tests/test_students.py -k int8
#     make test-avx2                 # the int8 tests on an AVX2-only CPU
#
# CPU_MODEL: EPYC-Rome (AVX2, no AVX-512: the slow CI machines' class; the default) or another of
# `qemu-x86_64 -cpu help`; QEMU 7.2 emulates no AVX-512 (its AVX-512 models run as AVX2 ones). Why: int8 kernels
# add up differently per class (AVX2's VPMADDUBSW saturates its pair sums, VNNI does not), and OpenCV dispatches
# other kernels; a test tolerance must hold on both kinds of CI machine, and this checks it on the one this machine
# is not. Emulation is ~30-50x slower: run chosen tests, not the suite. Timings under emulation mean nothing.
# QEMU 7.2 crashes in some of OpenCV's AVX2 kernels (cvtColor RGB -> HSV: "uncaught target signal 11"); with
# OPENCV_CPU_DISABLE=AVX2 OpenCV takes its older kernels, which a real AVX2 machine would not, so OpenCV's own
# numbers are not checked this way.
#
# QEMU comes from Debian's package registry without installing it: `apt-get download` of qemu-user and the two
# libraries it needs (Debian 12's names), unpacked into $TOONLAB_QEMU_DIR (default ~/.cache/toonlab-qemu).
# /proc/cpuinfo stays the host's under qemu-user: code that must know the class asks CPUID
# (realtime.export.cpu_class).
set -eu
model=EPYC-Rome
if [ "${1:-}" != "--" ] && [ $# -gt 0 ]; then model=$1; shift; fi
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [CPU_MODEL] -- COMMAND [ARGS...]" >&2; exit 2; }
dir=${TOONLAB_QEMU_DIR:-$HOME/.cache/toonlab-qemu}
qemu=$dir/root/usr/bin/qemu-x86_64
if [ ! -x "$qemu" ]; then
    command -v apt-get >/dev/null || { echo "error: needs apt-get (Debian) to fetch qemu-user" >&2; exit 1; }
    mkdir -p "$dir/debs"
    # apt-get's own status decides (its "W:" lines about running unsandboxed as root are left out of the log).
    if ! (cd "$dir/debs" && apt-get download -q qemu-user libcapstone4 liburing2 >"$dir/download.log" 2>&1); then
        grep -v '^W: ' "$dir/download.log" >&2 || true
        echo "error: apt-get download qemu-user libcapstone4 liburing2 failed (no package registry?)" >&2; exit 1
    fi
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
fi
# The libraries are QEMU's; the emulated program gets the caller's LD_LIBRARY_PATH (or none) back.
lib=$dir/root/usr/lib/x86_64-linux-gnu
if [ -n "${LD_LIBRARY_PATH:-}" ]; then
    LD_LIBRARY_PATH="$lib:$LD_LIBRARY_PATH" exec "$qemu" -cpu "$model" -E "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" "$@"
fi
LD_LIBRARY_PATH="$lib" exec "$qemu" -cpu "$model" -U LD_LIBRARY_PATH "$@"
