"""The ONE place where secrets are taken out of text before it is logged.

Every log record the station writes (the OCPP frame log in full and summary form, error
messages and tracebacks, DEBUG output) goes through :func:`redact` in the log formatter
(bootstrap/logging_setup.py); nothing else needs to remember it. What is a secret:

- the value of ``SecurityCtrlr.BasicAuthPassword`` wherever a device-model variable carries
  one: SetVariables ``setVariableData[].attributeValue``, GetVariables results
  ``getVariableResult[].attributeValue``, NotifyReport ``variableAttribute[].value`` (A01,
  B05-B08), also in the repr of a decoded message (``attribute_value='...'``);
- any member whose name says password, in JSON or a repr (``basicAuthPassword`` of a network
  profile, B09; ``basic_auth_password=`` of the link settings);
- PEM private key material (``-----BEGIN ... PRIVATE KEY-----`` blocks: A02/A03 key pairs,
  M-block key pairs);
- HTTP ``Authorization`` header values (Basic credentials of security profiles 1 and 2);
- values registered with :func:`register_secret` (the configured and stored Basic-auth
  passwords), wherever they appear.

The common case costs one regular-expression search per line: text without any of the markers
is returned as it is.
"""
from __future__ import annotations

import json
import re

MASK = "***"

_MARKERS = re.compile(r"(?i)password|private key|authorization")
_PEM_PRIVATE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_AUTH_HEADER = re.compile(r"(?i)(authorization[\"']?\s*(?::|=|,\s*b?[\"'])\s*[\"']?"
                          r"(?:(?:basic|bearer|digest)\s+)?)([^\s\"',)}\]]+)")
_PASSWORD_MEMBER = re.compile(r"""(?i)(["']?\b[A-Za-z_]*password["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_REPR_VALUE = re.compile(r"(?i)((?:attribute_?value|\bvalue)[\"']?\s*[:=]\s*)(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")
_SECRET_VARIABLE = "basicauthpassword"
_MIN_SECRET = 4                 # shorter registered values would mask ordinary words

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """A value never to be logged (the Basic-auth password from the config or the device model)."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every secret replaced by ``***``."""
    if _secrets and any(s in text for s in _secrets):
        for s in _secrets:
            text = text.replace(s, MASK)
    if _MARKERS.search(text) is None:
        return text
    text = _PEM_PRIVATE.sub(lambda m: f"-----BEGIN {m[1]}-----{MASK}-----END {m[1]}-----", text)
    text = _AUTH_HEADER.sub(lambda m: m[1] + MASK, text)
    if _SECRET_VARIABLE in text.lower():
        text = _redact_variables(text)
    return _PASSWORD_MEMBER.sub(lambda m: f"{m[1]}{m[2][0]}{MASK}{m[2][0]}", text)


def _redact_variables(text: str) -> str:
    """The values of BasicAuthPassword variables: in each JSON document found in `text` exactly
    (other variables keep their values); in what is not JSON, every value next to the name."""
    out: list[str] = []
    decoder = json.JSONDecoder()
    i = 0
    plain_from = 0
    while i < len(text):
        if text[i] in "[{":
            try:
                doc, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            if isinstance(doc, (list, dict)) and _SECRET_VARIABLE in text[i:end].lower():
                out.append(_redact_plain(text[plain_from:i]))
                out.append(json.dumps(_walk(doc), separators=(",", ":"), ensure_ascii=False))
                plain_from = end
            i = end
        else:
            i += 1
    out.append(_redact_plain(text[plain_from:]))
    return "".join(out)


def _redact_plain(text: str) -> str:
    if _SECRET_VARIABLE not in text.lower():
        return text
    return _REPR_VALUE.sub(lambda m: f"{m[1]}'{MASK}'", text)


def _walk(node):
    """A copy of the JSON `node` with the values of BasicAuthPassword variables masked."""
    if isinstance(node, list):
        return [_walk(x) for x in node]
    if not isinstance(node, dict):
        return node
    secret = _names_secret(node.get("variable"))
    out = {}
    for key, value in node.items():
        if secret and key == "attributeValue":
            out[key] = MASK
        elif secret and key == "variableAttribute" and isinstance(value, list):
            out[key] = [{**a, "value": MASK} if isinstance(a, dict) and "value" in a else a for a in value]
        else:
            out[key] = _walk(value)
    return out


def _names_secret(variable) -> bool:
    return isinstance(variable, dict) and str(variable.get("name", "")).lower() == _SECRET_VARIABLE
