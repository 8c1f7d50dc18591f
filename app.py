"""Toonlab studio: `python app.py [--config PATH] [--set key=value ...] [--host H] [--port N]`."""
from __future__ import annotations

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", help="studio config YAML (default configs/studio.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    ap.add_argument("--host", help="listen address (default from config: 127.0.0.1)")
    ap.add_argument("--port", type=int, help="port (default from config: 7860)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from studio.config import ConfigError, load_config

    overrides = list(args.set)
    if args.host:
        overrides.append(f"server.host={args.host}")
    if args.port:
        overrides.append(f"server.port={args.port}")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from studio.ui import build_app, launch

    launch(build_app(cfg), cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
