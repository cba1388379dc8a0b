"""Send one signed webhook through the guarded request: no redirects, a short timeout,
a capped response read."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from ..net.guarded import request
from ..net.ssrf import LookupFailed, Resolver, UnsafeURL

TIMEOUT = 10.0
MAX_RESPONSE = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    retryable: bool  # False for a URL we will never send to

    def to_dict(self, at: dt.datetime, next_attempt_at: dt.datetime | None) -> dict[str, Any]:
        return {
            "at": at.isoformat(),
            "ok": self.ok,
            "status_code": self.status_code,
            "error": self.error,
            "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None,
        }


def signed_headers(secret: str, message_id: str, payload: str, at: dt.datetime) -> dict[str, str]:
    """Standard Webhooks headers, verifiable with the ``standardwebhooks`` library."""
    from standardwebhooks.webhooks import Webhook

    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, payload),
        "user-agent": "Orchestrate-Webhooks/1",
    }


async def send(
    url: str, payload: dict[str, Any], *, secret: str, message_id: str, allow_private: bool = False, resolver: Resolver | None = None
) -> Attempt:
    import httpx

    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    headers = signed_headers(secret, message_id, body, dt.datetime.now(dt.UTC))
    try:
        answer = await request(
            "POST", url, headers=headers, content=body.encode(), timeout=TIMEOUT, max_bytes=MAX_RESPONSE, allow_private=allow_private, resolver=resolver
        )
    except UnsafeURL as exc:
        return Attempt(False, None, exc.message, retryable=False)
    except LookupFailed as exc:  # DNS may answer later
        return Attempt(False, None, exc.message, retryable=True)
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:300], retryable=True)
    except TimeoutError:
        return Attempt(False, None, f"no complete answer within {TIMEOUT:g}s", retryable=True)
    if 200 <= answer.status < 300:
        return Attempt(True, answer.status, None, retryable=False)
    error = "redirects are not followed" if 300 <= answer.status < 400 else f"answered {answer.status}"
    return Attempt(False, answer.status, error, retryable=True)
