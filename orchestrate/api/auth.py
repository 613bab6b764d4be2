"""Who is calling: bearer tokens mapped to users (DESIGN §4 identity, over HTTP).

Tokens come from, in this order (all are accepted together):

- ``ORCHESTRATE_API_TOKENS="TOKEN=USER,TOKEN2=USER2"``
- ``orchestrate.yaml``: ``serve: {tokens: {TOKEN: USER}}``
- ``ORCHESTRATE_API_TOKEN=TOKEN``: acts as the user who starts the server

With none of them, a random token for the user who starts the server is generated and
printed at start. Mutating calls need ``Authorization: Bearer TOKEN``; approvals are
cast as the token's user, under the same eligibility rules as ``orchestrate approval``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrate.domain.errors import WorkspaceError

TOKENS_ENV = "ORCHESTRATE_API_TOKENS"
TOKEN_ENV = "ORCHESTRATE_API_TOKEN"
MIN_LENGTH = 16


@dataclass(frozen=True)
class Tokens:
    users: Mapping[str, str]  # token -> user
    generated: str | None = None  # the token made up at start, to print

    def user_for(self, header: str | None) -> str | None:
        """The user of an ``Authorization: Bearer TOKEN`` header; None when it is missing or unknown."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        found = None
        for known, user in self.users.items():  # constant time per comparison: no timing oracle
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found


def _check(token: str, user: object, where: str) -> tuple[str, str]:
    if not isinstance(user, str) or not user.strip():
        raise WorkspaceError(f"{where}: the user of a token must be a name, got {user!r}")
    if len(token) < MIN_LENGTH:
        raise WorkspaceError(
            f"{where}: a token must be at least {MIN_LENGTH} characters",
            hint='make one with: python -c "import secrets; print(secrets.token_urlsafe(24))"',
        )
    return token, user.strip()


def load_tokens(config: Mapping[str, object], env: Mapping[str, str], server_user: str) -> Tokens:
    """Every configured token; one generated for ``server_user`` when none is."""
    users: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in env.get(TOKENS_ENV, "").split(","))):
        token, sep, user = pair.partition("=")
        if not sep:
            raise WorkspaceError(
                f"{TOKENS_ENV}: {pair[:4]}...: expected TOKEN=USER", hint=f"e.g. {TOKENS_ENV}=s3cr3t...=alice"
            )
        users.update([_check(token.strip(), user, TOKENS_ENV)])
    serve = config.get("serve") or {}
    if not isinstance(serve, Mapping):
        raise WorkspaceError(
            "orchestrate.yaml: serve: must be a mapping", hint="e.g. serve: {tokens: {TOKEN: alice}}"
        )
    configured = serve.get("tokens") or {}
    if not isinstance(configured, Mapping):
        raise WorkspaceError(
            "orchestrate.yaml: serve.tokens: must map each token to a user",
            hint="e.g. tokens: {TOKEN: alice}",
        )
    for token, user in configured.items():
        users.update([_check(str(token), user, "orchestrate.yaml: serve.tokens")])
    if env.get(TOKEN_ENV):
        users.update([_check(env[TOKEN_ENV].strip(), server_user, TOKEN_ENV)])
    if users:
        return Tokens(users)
    made = secrets.token_urlsafe(24)
    return Tokens({made: server_user}, generated=made)
