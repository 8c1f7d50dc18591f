"""Realtime: student export (ONNX + parity check), inference engines, the frame stream (realtime.Stream), video
files, benchmarks. Imports lazily; never imports `training` (students arrive as folders: config.json +
model.safetensors)."""


def __getattr__(name: str):
    if name in ("Stream", "StreamConfig", "StreamResult"):  # the facade, without importing it up front
        from . import stream

        return getattr(stream, name)
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")
