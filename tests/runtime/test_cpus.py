"""Thread pools follow the CPUs a process may use, not the machine's core count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from anpr.runtime.cpus import usable_cpus


def test_usable_cpus_is_within_the_machine() -> None:
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def _pinned_to_one_cpu(code: str) -> str:
    """What ``code`` prints in a fresh interpreter pinned to one CPU."""
    cpu = min(os.sched_getaffinity(0))
    script = f"import os; os.sched_setaffinity(0, {{{cpu}}}); {code}"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_affinity_to_one_cpu_counts_one() -> None:
    assert _pinned_to_one_cpu("from anpr.runtime.cpus import usable_cpus; print(usable_cpus())") == "1"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_a_session_pinned_to_one_cpu_runs_one_thread_per_call() -> None:
    code = (
        "from anpr.recognition.models import MODELS_DIR; "
        "from anpr.recognition import load_manifest, create_session; "
        "s = create_session(load_manifest(MODELS_DIR).reader.path); "
        "print(s.get_session_options().intra_op_num_threads)"
    )
    assert _pinned_to_one_cpu(code) == "1"
