"""gRPC retry policy: one layer per call, and retries that back off when the peer keeps failing.

A call is retried either by gRPC (a ``retryPolicy`` in the channel's service config) or by the caller's own loop,
never both: stacked, the attempts multiply (ingest once made 4 gRPC attempts per turn of its own loop, up to 16
against a peer that was already failing). Loops stay where they carry durability: ingest's recognition and delivery
and the edge agent's uplink hold frames and events on disk and never give up, so their channels get no retry
policy. Calls with no loop of their own (the operator command line) get the policy, and every policy comes with
``retryThrottling``, so that a failing peer is not hammered by every client's retries at once.
"""

from __future__ import annotations

import json
from typing import Any

# gRPC's token bucket per channel (grpc/proposal A6): each failed attempt costs a token, each success gives back
# tokenRatio; retries stop while half or fewer of the tokens are left, i.e. after about five failures in a row.
RETRY_THROTTLING = {"maxTokens": 10, "tokenRatio": 0.1}
MAX_ATTEMPTS = 5  # gRPC's cap


def service_config(service: str = "", retry_attempts: int = 0) -> str:
    """Service config JSON: round-robin over every resolved address and, when ``retry_attempts`` > 1, up to that
    many attempts (at most 5) for calls that fail UNAVAILABLE, with backoff and throttling.

    ``service``: the full proto name the retries apply to; empty for every method of the channel.
    """
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if retry_attempts > 1:
        config["methodConfig"] = [
            {
                "name": [{"service": service} if service else {}],
                "retryPolicy": {
                    "maxAttempts": min(retry_attempts, MAX_ATTEMPTS),
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
        config["retryThrottling"] = RETRY_THROTTLING
    return json.dumps(config)
