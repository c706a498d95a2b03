"""Watch hotlist alerts and confirm the first one: a minimal client of the public gRPC API.

    ANPR_TOKEN=<operator token> python alerts_client.py HOST:PORT [CURSOR]

TLS when ANPR_TLS_CA_FILE is set (plus ANPR_TLS_CERT_FILE / ANPR_TLS_KEY_FILE for mutual TLS), as `anpr up` prints.
Pass the last printed cursor to resume after it: no alert is skipped or repeated.
"""

import asyncio
import os
import sys
from pathlib import Path

import grpc

from anpr.api.hotlist.v1 import alert_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.api.hotlist.v1.hotlist_service_pb2_grpc import HotlistServiceStub


def open_channel(address: str) -> grpc.aio.Channel:
    files = [os.environ.get(f"ANPR_TLS_{name}_FILE") for name in ("CA", "KEY", "CERT")]
    if not files[0]:
        return grpc.aio.insecure_channel(address)
    ca, key, cert = (Path(f).read_bytes() if f else None for f in files)
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(ca, key, cert))


async def main(address: str, cursor: str = "") -> None:
    metadata = (("authorization", f"Bearer {os.environ['ANPR_TOKEN']}"),)
    async with open_channel(address) as channel:
        stub = HotlistServiceStub(channel)
        request = pb.SubscribeAlertsRequest(after_cursor=cursor, start=pb.ALERT_STREAM_START_EARLIEST)
        async for message in stub.SubscribeAlerts(request, metadata=metadata):
            if message.update.change != pb.ALERT_CHANGE_RAISED:
                continue  # a heartbeat
            alert = message.update.alert
            print(f"alert {alert.alert_id}: {alert.event.reading.text} on {alert.hit.hotlist_name}", end=" ")
            print(f"at camera {alert.event.camera_id} (cursor {message.cursor})", flush=True)
            ack = pb.AcknowledgeAlertRequest(
                alert_id=alert.alert_id, outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED, note="vehicle stopped"
            )
            reply = await stub.AcknowledgeAlert(ack, metadata=metadata)
            print(f"acknowledged {alert.alert_id}: {alert_pb2.AlertState.Name(reply.alert.state)}")
            return


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
