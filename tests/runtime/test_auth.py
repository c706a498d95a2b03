"""The secrets file format, token rotation, and the bearer header."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from anpr.runtime import metrics
from anpr.runtime.auth import TokensFileInvalid, TokenStore, bearer_token, parse_tokens, token_digest
from anpr.runtime.errors import ConfigurationError


def test_tokens_may_be_stored_as_digests() -> None:
    principals = parse_tokens(
        {"clients": [{"identity": "cam-1", "roles": ["camera"], "token_sha256": token_digest("s3cret")}]}
    )
    assert principals[token_digest("s3cret")].identity == "cam-1"
    assert principals[token_digest("s3cret")].roles == frozenset({"camera"})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], 'expected an object with a "clients" list'),
        ({"clients": [{"identity": "x", "roles": ["pilot"], "token": "t"}]}, "unknown roles ['pilot']"),
        ({"clients": [{"identity": "", "roles": ["camera"], "token": "t"}]}, "identity must be a non-empty string"),
        ({"clients": [{"identity": "x", "roles": [], "token": "t"}]}, "roles must be a non-empty list"),
        ({"clients": [{"identity": "x", "roles": ["camera"]}]}, "needs token_sha256"),
        (
            {
                "clients": [
                    {"identity": "a", "roles": ["camera"], "token": "t"},
                    {"identity": "b", "roles": ["camera"], "token": "t"},
                ]
            },
            "the same token is given twice",
        ),
    ],
)
def test_bad_secrets_files_are_refused(document: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_tokens(document)
    assert message in str(error.value)


def test_token_store_picks_up_rotation_and_fails_closed_on_a_broken_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"clients": [{"identity": "old", "roles": ["operator"], "token": "one"}]}))
    store = TokenStore(path, recheck_seconds=0)
    assert store.lookup("one") is not None
    path.write_text(json.dumps({"clients": [{"identity": "new", "roles": ["operator"], "token": "two"}]}))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert store.lookup("one") is None
    principal = store.lookup("two")
    assert principal is not None
    assert principal.identity == "new"
    # Issue 19: a revocation with a typo kept the old tokens in force. Now every call is refused until it is fixed.
    path.write_text('{"clients": [{"identity": "new", "roles": ["operator"], "token": "two"},]}')
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 2_000_000))
    with pytest.raises(TokensFileInvalid):
        store.lookup("two")
    assert metrics.TOKENS_FILE_VALID._value.get() == 0
    with pytest.raises(TokensFileInvalid):
        store.lookup("two")  # still refused at the next check, although the file did not change again
    path.write_text(
        json.dumps({"clients": [{"identity": "new", "roles": ["operator"], "token_sha256": token_digest("three")}]})
    )
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 3_000_000))
    caplog.clear()
    assert store.lookup("two") is None
    assert store.lookup("three") is not None
    assert metrics.TOKENS_FILE_VALID._value.get() == 1
    assert "plain tokens" not in caplog.text


def test_plain_tokens_warn_and_retired_roles_are_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"clients": [{"identity": "dev", "roles": ["operator"], "token": "plain"}]}))
    TokenStore(path)
    assert "holds 1 plain tokens" in caplog.text
    with pytest.raises(ConfigurationError, match="ingest-service"):
        parse_tokens({"clients": [{"identity": "x", "roles": ["service"], "token": "t"}]})
    with pytest.raises(ConfigurationError, match="64 hex digits"):
        parse_tokens({"clients": [{"identity": "x", "roles": ["camera"], "token_sha256": "z" * 64}]})


def test_bearer_header_parsing() -> None:
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("Authorization", "bearer  abc ")]) == "abc"
    assert bearer_token([("authorization", "Basic abc")]) is None
    assert bearer_token([("authorization", "Bearer ")]) is None
    assert bearer_token([]) is None
