"""The recognize service in a process of its own: a second replica whose metrics are its own, not this process's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.polling import wait_until


@dataclass(frozen=True)
class RecognizeProcess:
    """A running ``python -m anpr.recognize``: its gRPC address, its Prometheus endpoint and the process."""

    address: str
    metrics_url: str
    process: asyncio.subprocess.Process

    @property
    def port(self) -> int:
        """The gRPC port."""
        return int(self.address.rpartition(":")[2])

    async def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a replica; waits for the exit."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def _read_json(path: Path) -> dict[str, str]:
    document: dict[str, str] = json.loads(path.read_text())
    return document


@asynccontextmanager
async def recognize_process(
    ready: Path, tokens_file: Path, model_dir: Path, seconds: float = 30.0
) -> AsyncIterator[RecognizeProcess]:
    """Start the service on free loopback ports and wait for its ready file (``ready``); stopped afterwards."""
    environment = {
        **os.environ,
        "ANPR_RECOGNIZE_GRPC_HOST": "127.0.0.1",
        "ANPR_RECOGNIZE_GRPC_PORT": "0",
        "ANPR_RECOGNIZE_METRICS_HOST": "127.0.0.1",
        "ANPR_RECOGNIZE_METRICS_PORT": "0",
        "ANPR_RECOGNIZE_AUTH_TOKENS_FILE": str(tokens_file),
        "ANPR_RECOGNIZE_MODEL_DIR": str(model_dir),
        "ANPR_RECOGNIZE_MODEL_POLL_SECONDS": "0",
        "ANPR_RECOGNIZE_READY_FILE": str(ready),
        "ANPR_RECOGNIZE_LOG_FORMAT": "text",
        "ANPR_RECOGNIZE_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "anpr.recognize", env=environment)
    replica: RecognizeProcess | None = None
    try:

        def started() -> bool:
            assert process.returncode is None, f"recognize exited with {process.returncode} before it was ready"
            return ready.exists()

        await wait_until(started, seconds=seconds)
        document = _read_json(ready)
        replica = RecognizeProcess(document["grpc_address"], document["metrics_url"], process)
        yield replica
    finally:
        if replica is None:
            process.kill()
            await process.wait()
        else:
            await replica.stop()
