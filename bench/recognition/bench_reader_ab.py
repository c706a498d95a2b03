"""Interleaved A/B timing of two CTC reader files on ONE CPU core (e.g. before and after ``anpr.training fuse``).

Usage (from the repository root)::

    git show 856ab6d:src/anpr/recognition/models/plate_reader_ctc.onnx > /tmp/reader_before.onnx
    .venv/bin/python bench/recognition/bench_reader_ab.py /tmp/reader_before.onnx \\
        src/anpr/recognition/models/plate_reader_ctc.onnx [--cpu 0] [--rounds 8] [--json OUT.json]

Both files load in one process pinned to one core (one ONNX Runtime thread each). Each round runs each model on
lines of 48 x 160 (batches of 1 and of 8, 20 times), A then B in even rounds and B then A in odd ones, so that a
slow phase of the machine hits both alike. It also checks that both give the same probabilities on those lines.
Reported: milliseconds per line, the median over rounds, and every round's figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ms_per_line(session: ort.InferenceSession, batches: list[np.ndarray], repeat: int) -> float:
    name = session.get_inputs()[0].name
    lines = sum(len(b) for b in batches) * repeat
    start = time.perf_counter()
    for _ in range(repeat):
        for batch in batches:
            session.run(None, {name: batch})
    return 1000 * (time.perf_counter() - start) / lines


def main(argv: list[str] | None = None) -> int:
    """Time both readers, print a markdown table (and write JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--cpu", type=int, default=0, help="the one CPU core to pin to (-1: do not pin)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    sessions = [_session(args.a), _session(args.b)]
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (n, 3, 48, 160)).astype(np.float32) for n in (1, 8)]
    outputs = [s.run(None, {s.get_inputs()[0].name: batches[1]})[0] for s in sessions]
    gap = float(np.abs(outputs[0] - outputs[1]).max())
    for session in sessions:  # warm-up
        _ms_per_line(session, batches, 3)
    rounds: list[list[float]] = [[], []]
    for r in range(args.rounds):
        for k in (0, 1) if r % 2 == 0 else (1, 0):
            rounds[k].append(_ms_per_line(sessions[k], batches, 20))
    medians = [statistics.median(v) for v in rounds]
    print(f"# Reader A/B on one core (pinned to CPU {args.cpu}), {args.rounds} interleaved rounds\n")
    print("| reader | ms per 48 x 160 line (median) | rounds |")
    print("|---|---|---|")
    for path, median, values in zip((args.a, args.b), medians, rounds, strict=True):
        print(f"| {path} | {median:.3f} | {' '.join(f'{v:.2f}' for v in values)} |")
    print(f"\nB / A = {medians[1] / medians[0]:.3f}; largest difference of the outputs: {gap:.2e}")
    if args.json:
        report = {
            "a": str(args.a),
            "b": str(args.b),
            "cpu": args.cpu,
            "ms_per_line_median": {"a": medians[0], "b": medians[1]},
            "ms_per_line_rounds": {"a": rounds[0], "b": rounds[1]},
            "ratio_b_over_a": medians[1] / medians[0],
            "max_output_difference": gap,
        }
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
