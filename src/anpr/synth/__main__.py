"""``python -m anpr.synth sheet --out sheet.png --seed 0``: write a sample sheet of the synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path

from anpr.synth.sheet import write_sheet


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(prog="python -m anpr.synth")
    sub = parser.add_subparsers(dest="command", required=True)
    sheet = sub.add_parser("sheet", help="write a PNG sample sheet")
    sheet.add_argument("--out", type=Path, default=Path("sheet.png"))
    sheet.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_sheet(args.out, args.seed))


if __name__ == "__main__":
    main()
