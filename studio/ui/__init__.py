"""The Gradio studio: the only package that imports gradio. `build_app(cfg)` returns the Blocks app."""
from .app import UIContext, build_app, launch

__all__ = ["UIContext", "build_app", "launch"]
