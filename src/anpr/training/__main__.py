"""``python -m anpr.training STAGE``: the training recipe, one stage at a time (ctc-reader, detector, export, ...)."""

from __future__ import annotations

import argparse
import importlib
import sys

from anpr.synth.fonts import PACKAGES, WANTED, missing_fonts

# The stages that render synthetic plates or scenes, whose output depends on the fonts installed.
_DRAWS_SYNTHETIC_DATA = frozenset({"ctc-reader", "detector", "calibrate", "evaluate", "interpolate"})


def _warn_of_missing_fonts() -> None:
    missing = missing_fonts()
    if missing:
        print(
            f"warning: {len(missing)} of the {len(WANTED)} plate fonts are not installed ({', '.join(missing)}); "
            "the synthetic data drawn now is not the recipe's and its figures are not comparable. tools/train "
            f"installs them: apt-get install {' '.join(PACKAGES)}",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> None:
    """Parse the stage and its options, then run it."""
    parser = argparse.ArgumentParser(prog="python -m anpr.training")
    sub = parser.add_subparsers(dest="stage", required=True)
    stages = {
        "ctc-reader": "anpr.training.ctc_plate_reader",
        "detector": "anpr.training.detector",
        "export": "anpr.training.export",
        "calibrate": "anpr.training.calibrate",
        "fuse": "anpr.training.fuse",
        "interpolate": "anpr.training.interpolate",
        "evaluate": "anpr.training.evaluate",
    }
    for name, module in stages.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name))
    args = parser.parse_args(argv)
    if args.stage in _DRAWS_SYNTHETIC_DATA:
        _warn_of_missing_fonts()
    mod = importlib.import_module(stages[args.stage])
    mod.run(args) if hasattr(mod, "run") else mod.train(args)


if __name__ == "__main__":
    main()
