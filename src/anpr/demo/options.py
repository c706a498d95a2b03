"""The options of ``anpr demo``, apart from the demo itself.

``anpr --help`` builds every sub-command's parser; keeping these here lets it do so without importing the demo,
which needs the ``demo`` and ``recognize`` extras (rich, Pillow, ONNX Runtime) that a service install leaves out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from anpr.runtime.settings import DEFAULT_DATA_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anpr demo``."""
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds of traffic, then stop (default: until Ctrl-C)"
    )
    parser.add_argument("--json", action="store_true", help="endpoints line, then one JSON line per event and alert")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second of each live camera (6 cameras)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated traffic")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR / "demo", help="state of the demo suite")
    parser.add_argument("--database-url", default=os.environ.get("ANPR_DATABASE_URL"), help="skip the embedded DB")
    parser.add_argument("--plaintext", action="store_true", help="no TLS between the demo and the services")
