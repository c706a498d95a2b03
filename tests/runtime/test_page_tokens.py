"""Page tokens signed with a key shared by every replica: a listing goes on at any replica, after any restart."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest

from anpr.api.common.v1 import paging_pb2
from anpr.api.hotlist.v1 import hotlist_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.runtime import page_tokens
from anpr.runtime.errors import ConfigurationError
from testkit.hotlist import caller
from testkit.services import StartService


def test_a_key_file_too_short_or_missing_is_a_configuration_error(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    with pytest.raises(ConfigurationError, match="fewer than 32 bytes"):
        page_tokens.use_key_file(short)
    with pytest.raises(ConfigurationError, match="cannot read"):
        page_tokens.use_key_file(tmp_path / "absent")


async def list_page(address: str, admin_token: str, page_token: str = "") -> pb.ListHotlistsResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        admin = caller(channel, admin_token)
        return await admin.stub.ListHotlists(
            pb.ListHotlistsRequest(page=paging_pb2.PageRequest(page_size=2, page_token=page_token)),
            metadata=admin.metadata,
        )


async def test_a_token_from_one_replica_continues_the_listing_at_another(
    tmp_path: Path,
    database_url: str,
    start_service: StartService,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = tmp_path / "page-token.key"
    key.write_bytes(b"0123456789abcdef" * 4)
    first_replica = await start_service("hotlist", database_url=database_url, page_token_key_file=str(key))
    async with grpc.aio.insecure_channel(first_replica.address) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        for name in ("a", "b", "c"):
            await admin.stub.CreateHotlist(
                pb.CreateHotlistRequest(hotlist=hotlist_pb2.Hotlist(name=name, active=True)), metadata=admin.metadata
            )
    first = await list_page(first_replica.address, tokens["hotlist-admin"])
    assert [h.name for h in first.hotlists] == ["a", "b"]

    # Each replica is its own process with its own random key; a fresh one is what this process would have.
    monkeypatch.setattr(page_tokens, "_PROCESS", page_tokens.PageTokens())
    second_replica = await start_service("hotlist", database_url=database_url, page_token_key_file=str(key))
    rest = await list_page(second_replica.address, tokens["hotlist-admin"], first.page.next_page_token)
    assert [h.name for h in rest.hotlists] == ["c"]

    monkeypatch.setattr(page_tokens, "_PROCESS", page_tokens.PageTokens())
    unkeyed_replica = await start_service("hotlist", database_url=database_url)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_page(unkeyed_replica.address, tokens["hotlist-admin"], first.page.next_page_token)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
