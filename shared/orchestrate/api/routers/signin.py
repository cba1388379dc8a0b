"""/v1/auth/link: exchange a one-time sign-in code (from `orchestrate serve` or
`orchestrate token --link`) for a development token. Only on a server that signs its
own development tokens; a server of a hosted Supabase project answers 404 (its users
sign in through Supabase Auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...settings import Settings
from ..deps import Svc
from ..problems import ApiProblem
from ..schemas import SigninRequest, SigninToken
from ._docs import problems

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/link", response_model=SigninToken, responses=problems(404))
async def exchange_signin_code(body: SigninRequest, request: Request, svc: Svc) -> dict[str, Any]:
    """Exchange a one-time sign-in code for an access token. A code works once, for
    10 minutes; a used, expired or unknown one answers 401 `invalid-signin-code`."""
    from ...cli.devauth import TOKEN_HOURS, links_enabled, mint
    from ...db.signin import redeem_code

    settings: Settings = request.app.state.settings
    if not links_enabled(settings):
        raise ApiProblem(404, "not-found", "sign-in links are for a local server only: sign in with Supabase Auth")
    found = await redeem_code(svc.store, body.code)
    if found is None:
        raise ApiProblem(
            401, "invalid-signin-code", "this sign-in link is used, expired or unknown: get a new one with `orchestrate token --link`"
        )
    user_id, email = found
    token = mint(settings, user_id, email or "", hours=TOKEN_HOURS)
    return {"access_token": token, "token_type": "bearer", "expires_in": int(TOKEN_HOURS * 3600), "user": {"id": user_id, "email": email}}
