"""One fault environment (private PostgreSQL and the three services as processes) shared by the module's scenarios:
each scenario uses cameras of its own, so the runs do not see each other's passes.

``ANPR_FAULTS_CODE=DIR`` runs the services of another checkout (for example ``git archive`` of an older commit
unpacked in DIR) under the same scenarios; unset, this working tree's services run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testkit.faults.scenarios import FaultEnvironment, fault_environment


@pytest.fixture(scope="module")
async def faults(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultEnvironment]:
    """Started once per module; the services' logs stay in the directory pytest keeps for the last runs."""
    code = os.environ.get("ANPR_FAULTS_CODE")
    async with fault_environment(tmp_path_factory.mktemp("faults"), Path(code) if code else None) as environment:
        yield environment
