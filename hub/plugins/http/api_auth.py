"""Sign-in, sessions, long-lived tokens and onboarding: ``/api/auth/*`` and ``/api/onboarding``.

See :mod:`.auth.manager` for the token model and :mod:`.auth.onboarding` for
first-run owner creation.  Sign-in endpoints are public but throttled per
address and username (:mod:`.auth.guard`); ``/api/auth/bans`` lists and lifts
the guard's bans.
"""

from __future__ import annotations

import asyncio

import voluptuous as vol
from aiohttp import web

from hub.web import BadRequest, NotFound, Route, json_int, json_response, operation, path_param, read_json, text

from .auth.clients import describe_client
from .auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, USERNAME_PATTERN, check_username
from .auth.store import KIND_LONG_LIVED
from .middleware import SERVER_KEY
from .openapi import ref
from .remote import client_address
from .routes import PRINCIPAL_KEY


def _username(value: object) -> str:
    try:
        check_username(value)  # type: ignore[arg-type]
    except ValueError as err:
        raise vol.Invalid(str(err)) from None
    return value  # type: ignore[return-value]


NEW_PASSWORD = vol.All(str, vol.Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH))
"""What a new account's password must be (the CLI applies the same policy)."""

LOGIN_BODY = vol.Schema(
    {vol.Required("username"): text(64, min_length=1), vol.Required("password"): text(MAX_PASSWORD_LENGTH, strip=False)}
)
REFRESH_BODY = vol.Schema({vol.Required("refresh_token"): text(256, min_length=1)})
NEW_TOKEN_BODY = vol.Schema(
    {
        vol.Required("name"): text(100, min_length=1),
        vol.Required("password"): text(MAX_PASSWORD_LENGTH, strip=False),
        vol.Optional("lifetime_days"): json_int(1, 3650),
    }
)
ONBOARDING_BODY = vol.Schema(
    {
        vol.Required("token"): text(256, min_length=1),
        vol.Required("username"): _username,
        vol.Required("password"): NEW_PASSWORD,
    }
)


async def login(request: web.Request) -> web.Response:
    """Exchange a username and password for a session."""
    server = request.app[SERVER_KEY]
    body = await read_json(request, LOGIN_BODY)
    address = client_address(request, server.trusted_proxies)
    user = await server.auth.check_password(body["username"], body["password"], address)
    # Only now: naming the session costs a thread's work that a flood of wrong passwords should not get.
    client = await asyncio.to_thread(describe_client, request.headers.get("User-Agent", ""))
    return json_response(await server.auth.open_session(user, body["password"], address, client))


async def refresh(request: web.Request) -> web.Response:
    """Exchange a refresh token for a new access token."""
    server = request.app[SERVER_KEY]
    body = await read_json(request, REFRESH_BODY)
    address = client_address(request, server.trusted_proxies)
    return json_response(server.auth.refresh(body["refresh_token"], address))


async def logout(request: web.Request) -> web.Response:
    """End the caller's session: its refresh token and every access token issued from it."""
    server = request.app[SERVER_KEY]
    principal = request[PRINCIPAL_KEY]
    if principal.kind == KIND_LONG_LIVED:
        raise BadRequest("a long-lived token is not a session; revoke it with DELETE /api/auth/tokens/{id}")
    server.auth.revoke(principal.root_id)
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    """Who the token belongs to."""
    principal = request[PRINCIPAL_KEY]
    return json_response({**principal.user.public(), "token_id": principal.root_id, "token_kind": principal.kind})


async def list_tokens(request: web.Request) -> web.Response:
    """The caller's sessions and long-lived tokens (never their secrets)."""
    server = request.app[SERVER_KEY]
    principal = request[PRINCIPAL_KEY]
    tokens = [
        {**token.public(), "current": token.id == principal.root_id} for token in server.auth.tokens_of(principal.user)
    ]
    return json_response({"tokens": tokens})


async def create_token(request: web.Request) -> web.Response:
    """A long-lived token for a script, after the user's password is checked again; shown in this response only."""
    server = request.app[SERVER_KEY]
    body = await read_json(request, NEW_TOKEN_BODY)
    user = request[PRINCIPAL_KEY].user
    await server.auth.reauthenticate(user, body["password"], client_address(request, server.trusted_proxies))
    days = body.get("lifetime_days")
    stored, token = server.auth.create_long_lived(user, body["name"], days and days * 86400.0)
    return json_response({**stored.public(), "current": False, "token": token}, status=201)


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one of the caller's tokens or sessions."""
    server = request.app[SERVER_KEY]
    token_id = request.match_info["token_id"]
    user = request[PRINCIPAL_KEY].user
    if not any(token.id == token_id for token in server.auth.tokens_of(user)) or not server.auth.revoke(token_id):
        raise NotFound(f"no token {token_id!r}", code="token_not_found")
    return web.Response(status=204)


async def list_bans(request: web.Request) -> web.Response:
    """Client addresses banned from signing in after repeated failures."""
    return json_response({"bans": request.app[SERVER_KEY].guard.bans()})


async def lift_ban(request: web.Request) -> web.Response:
    """Lift the ban of one address (the request is in the audit trail)."""
    address = request.match_info["address"]
    if not request.app[SERVER_KEY].guard.lift(address):
        raise NotFound(f"{address!r} is not banned", code="ban_not_found")
    return web.Response(status=204)


async def onboarding_status(request: web.Request) -> web.Response:
    """Whether the hub still needs its owner account (the sign-in page shows the onboarding form then)."""
    return json_response({"required": request.app[SERVER_KEY].onboarding.required})


async def onboarding_complete(request: web.Request) -> web.Response:
    """Create the owner with the one-time token ``hub run`` printed, and sign them in."""
    server = request.app[SERVER_KEY]
    body = await read_json(request, ONBOARDING_BODY)
    address = client_address(request, server.trusted_proxies)
    result = await server.onboarding.complete(body["token"], body["username"], body["password"], address)
    return json_response(result, status=201)


_CREDENTIALS = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"},
        "password": {"type": "string", "maxLength": MAX_PASSWORD_LENGTH},
    },
    "additionalProperties": False,
}
_SIGN_IN_ERRORS = (401, 403, 429)

ROUTES = [
    Route(
        "POST",
        "/api/auth/login",
        login,
        auth=False,
        doc=operation(
            "Sign in",
            tag="auth",
            public=True,
            body=_CREDENTIALS,
            ok=ref("Session"),
            errors=_SIGN_IN_ERRORS,
            description="Failed attempts are throttled per address and per username (429 with Retry-After), "
            "repeated ones ban the address from signing in for a while (403 banned), and when the hub is busy "
            "checking passwords the attempt is refused at once (429) rather than queued.",
        ),
    ),
    Route(
        "POST",
        "/api/auth/token",
        refresh,
        auth=False,
        doc=operation(
            "New access token from a refresh token",
            tag="auth",
            public=True,
            body={
                "type": "object",
                "required": ["refresh_token"],
                "properties": {"refresh_token": {"type": "string", "minLength": 1, "maxLength": 256}},
                "additionalProperties": False,
            },
            ok=ref("AccessToken"),
            errors=_SIGN_IN_ERRORS,
            description="Refresh tokens rotate: the answer carries the session's next refresh token and the one "
            "sent is spent. Sending a spent one again ends the session (401 refresh_token_reused). A valid refresh "
            "token works even from a banned address.",
        ),
    ),
    Route(
        "POST",
        "/api/auth/logout",
        logout,
        doc=operation("End this session", tag="auth", ok=None, status=204, errors=(400,)),
    ),
    Route("GET", "/api/auth/me", me, doc=operation("The signed-in user", tag="auth", ok=ref("Me"))),
    Route(
        "GET",
        "/api/auth/tokens",
        list_tokens,
        doc=operation("Sessions and long-lived tokens of the user", tag="auth", ok=ref("TokenList")),
    ),
    Route(
        "POST",
        "/api/auth/tokens",
        create_token,
        doc=operation(
            "Create a long-lived token",
            tag="auth",
            status=201,
            body={
                "type": "object",
                "required": ["name", "password"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"},
                    "password": {
                        "type": "string",
                        "maxLength": MAX_PASSWORD_LENGTH,
                        "description": "the user's password, checked again",
                    },
                    "lifetime_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                },
                "additionalProperties": False,
            },
            ok=ref("NewToken"),
            errors=(403, 429),
            description="The user's password must be given again (403 reauthentication_failed otherwise; a wrong "
            "one counts as a failed sign-in). The token string is returned by this response only; store it. "
            "Without lifetime_days the token is valid until revoked.",
        ),
    ),
    Route(
        "DELETE",
        "/api/auth/tokens/{token_id}",
        revoke_token,
        doc=operation(
            "Revoke a token or session", tag="auth", ok=None, status=204, params=[path_param("token_id", "token id")]
        ),
    ),
    Route(
        "GET",
        "/api/auth/bans",
        list_bans,
        doc=operation("Addresses banned from signing in", tag="auth", ok=ref("BanList")),
    ),
    Route(
        "DELETE",
        "/api/auth/bans/{address}",
        lift_ban,
        doc=operation(
            "Lift a ban", tag="auth", ok=None, status=204, params=[path_param("address", "the banned client address")]
        ),
    ),
    Route(
        "GET",
        "/api/onboarding",
        onboarding_status,
        auth=False,
        doc=operation(
            "Whether the owner account still has to be created", tag="auth", public=True, ok=ref("OnboardingStatus")
        ),
    ),
    Route(
        "POST",
        "/api/onboarding",
        onboarding_complete,
        auth=False,
        doc=operation(
            "Create the owner account with the one-time onboarding token",
            tag="auth",
            public=True,
            status=201,
            body={
                "type": "object",
                "required": ["token", "username", "password"],
                "properties": {
                    "token": {"type": "string", "minLength": 1, "maxLength": 256},
                    "username": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": USERNAME_PATTERN},
                    "password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH},
                },
                "additionalProperties": False,
            },
            ok=ref("OnboardingResult"),
            errors=(401, 403, 409, 429),
        ),
    ),
]
