"""The README's "Integrate over gRPC" example: the README shows the file verbatim, and the file works against a real
hotlist server (it prints the alert a read raised, and its acknowledgement is recorded)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import grpc
import grpc.aio
import pytest

from anpr.api.hotlist.v1 import alert_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from testkit.certificates import make_certificates
from testkit.hotlist import add_plates, caller, create_list, plate_event
from testkit.services import StartService

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "alerts_client.py"


def readme_example() -> str:
    """The first Python block of the README's "Integrate over gRPC" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Integrate over gRPC\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```python\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert block is not None, "the section has no Python block"
    return block.group(1)


def test_readme_shows_the_example_file_verbatim() -> None:
    assert readme_example() == EXAMPLE.read_text()


@pytest.mark.parametrize("mutual_tls", [False, True], ids=["plaintext", "mutual-tls"])
async def test_example_prints_the_alert_and_acknowledges_it(
    database_url: str, start_service: StartService, tokens: dict[str, str], tmp_path: Path, mutual_tls: bool
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_TLS_")}
    settings = {"database_url": database_url}
    credentials: grpc.ChannelCredentials | None = None
    if mutual_tls:
        files = make_certificates(tmp_path)
        settings |= {
            "tls_cert_file": str(files.server_cert),
            "tls_key_file": str(files.server_key),
            "tls_client_ca_file": str(files.ca),
        }
        environment |= {
            "ANPR_TLS_CA_FILE": str(files.ca),
            "ANPR_TLS_CERT_FILE": str(files.client_cert),
            "ANPR_TLS_KEY_FILE": str(files.client_key),
        }
        credentials = grpc.ssl_channel_credentials(
            files.ca.read_bytes(), files.client_key.read_bytes(), files.client_cert.read_bytes()
        )
    server = await start_service("hotlist", **settings)
    if credentials is None:
        channel = grpc.aio.insecure_channel(server.address)
    else:
        channel = grpc.aio.secure_channel(server.address, credentials)
    async with channel:
        admin = caller(channel, tokens["hotlist-admin"])
        ingest = caller(channel, tokens["ingest-service"])
        operator = caller(channel, tokens["operator"])
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "CA123456")
        read = plate_event("CA123456", camera_id="gate-1")
        reported = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=[read]), metadata=ingest.metadata)
        (alert,) = reported.results[0].alerts

        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            server.address,
            env={**environment, "ANPR_TOKEN": tokens["operator"]},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        lines = stdout.decode().splitlines()
        assert len(lines) == 2, lines
        assert lines[0].startswith(f"alert {alert.alert_id}: CA123456 on stolen at camera gate-1 (cursor ")
        assert lines[1] == f"acknowledged {alert.alert_id}: ALERT_STATE_CONFIRMED"

        # Recorded: a stream with updates replays the acknowledgement, by the operator's identity.
        request = pb.SubscribeAlertsRequest(start=pb.ALERT_STREAM_START_EARLIEST, include_updates=True)
        call = operator.stub.SubscribeAlerts(request, metadata=operator.metadata)
        acknowledged: alert_pb2.Alert | None = None
        try:
            async with asyncio.timeout(30):
                async for message in call:
                    if message.update.change == pb.ALERT_CHANGE_ACKNOWLEDGED:
                        acknowledged = message.update.alert
                        break
        finally:
            call.cancel()
    assert acknowledged is not None
    assert acknowledged.alert_id == alert.alert_id
    assert acknowledged.state == alert_pb2.ALERT_STATE_CONFIRMED
    assert acknowledged.acknowledgement.outcome == alert_pb2.ALERT_OUTCOME_CONFIRMED
    assert acknowledged.acknowledgement.acknowledged_by == "test-operator"
    assert acknowledged.acknowledgement.note == "vehicle stopped"
