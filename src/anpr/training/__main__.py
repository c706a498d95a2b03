"""``python -m anpr.training STAGE``: the training recipe, one stage at a time (ctc-reader, detector, export, ...)."""

from __future__ import annotations

import argparse
import importlib


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
    mod = importlib.import_module(stages[args.stage])
    mod.run(args) if hasattr(mod, "run") else mod.train(args)


if __name__ == "__main__":
    main()
