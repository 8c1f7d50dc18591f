"""Realtime: student export (ONNX + parity check), inference engines, benchmarks. Imports lazily; never
imports `training` (students arrive as folders: config.json + model.safetensors)."""
