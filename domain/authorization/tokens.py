"""Identity of idTokens.

Two IdTokens are the same token when they have the same `type` and the same `idToken`
compared case-insensitively: the schema says "IdToken is case insensitive", and the
2025-01 errata (C01.FR.25) says two IdTokenTypes are equal when idToken.idToken and
idToken.type are equal, `additionalInfo` not taken into account.
"""
from __future__ import annotations

from domain import messages as m


def token_key(t: m.IdToken) -> str:
    """The storage / dictionary key of a token: "<type>:<casefolded idToken>",
    e.g. "ISO14443:04a2b3c4" (the type never contains ':')."""
    return f"{t.type}:{t.id_token.casefold()}"


def same_token(a: m.IdToken | None, b: m.IdToken | None) -> bool:
    """True when both are given and are the same token (C01.FR.25)."""
    if a is None or b is None:
        return False
    return a.type == b.type and a.id_token.casefold() == b.id_token.casefold()
