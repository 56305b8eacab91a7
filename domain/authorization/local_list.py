"""The Local Authorization List (OCPP 2.0.1 D01 SendLocalList, D02 GetLocalListVersion).

Pure: the records come in at construction (table "local_list", one record per token:
key `token_key(idToken)`, value the AuthorizationData as on the wire) with the version
(station-state key "local_list_version"); `apply` returns the change as one
`StoreRecords` holding the entries *and* the new version, so storage never has a list of
one version with the number of another.

Rules of `apply` (TC_D_01..TC_D_07; D01.FR.xx as the test cases cite them)
- versionNumber must be > 0: 0 is what GetLocalListVersion reports for "no list"
  (D02, TC_D_10) and the CSMS must send more than 0 (D01.FR.18, TC_D_01_CSMS) -> Failed.
- Full (D01.FR.15): the list becomes exactly the entries sent, whatever the current
  version (a Full list is complete, so an older or equal number is accepted: it is how a
  CSMS that lost track re-synchronises). No entries (field absent; an empty array is
  also taken) empties the list (D01.FR.04, TC_D_04). An entry without idTokenInfo in a
  Full list is skipped (without idTokenInfo it is a removal, and the token is not in
  the new list anyway).
- Differential: versionNumber <= the current version -> VersionMismatch, nothing changes
  (D01.FR.19, TC_D_06). Entries with idTokenInfo are added or replaced (D01.FR.16),
  entries without are removed (D01.FR.17); no entries only sets the version (D01.FR.05,
  TC_D_05). A token sent twice: the last entry counts.
- More entries than `max_entries` (LocalAuthListCtrlr.Entries maxLimit) after the update,
  or more than `max_bytes` of records, -> Failed, nothing changes.
- `cacheExpiryDateTime` of a list entry is kept but not used: it concerns the cache only.
Whether the list is enabled (GetLocalListVersion answers 0 when it is not, D02.FR.03) and
ItemsPerMessage / BytesPerMessage are the message handler's business.
"""
from __future__ import annotations

from collections.abc import Mapping

import msgspec

from domain import messages as m
from domain.authorization.tokens import token_key
from domain.effects import StoreRecords

TABLE = "local_list"
VERSION_KEY = "local_list_version"

_data_decoder = msgspec.json.Decoder(m.AuthorizationData)
_encode = msgspec.json.encode


def _size(key: str, text: str) -> int:
    return len(key.encode()) + len(text.encode())


class LocalAuthList:
    """The Local Authorization List, built from table "local_list" and its version."""

    def __init__(self, records: Mapping[str, str] = {}, version: int = 0) -> None:
        self._version = version
        self._infos: dict[str, m.IdTokenInfo] = {}
        self._texts: dict[str, str] = {}
        self._bytes = 0
        for key, text in records.items():
            try:
                data = _data_decoder.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue                    # unreadable: ignored (the next Full list rewrites the table)
            if data.id_token_info is None:
                continue
            self._infos[key] = data.id_token_info
            self._texts[key] = text
            self._bytes += _size(key, text)

    @property
    def version(self) -> int:
        """The list's version (GetLocalListVersionResponse.versionNumber when enabled)."""
        return self._version

    def __len__(self) -> int:
        """Entries in the list (LocalAuthListCtrlr.Entries)."""
        return len(self._infos)

    def size_bytes(self) -> int:
        """Bytes of the stored records (LocalAuthListCtrlr.Storage)."""
        return self._bytes

    def lookup(self, token: m.IdToken) -> m.IdTokenInfo | None:
        return self._infos.get(token_key(token))

    def records(self) -> dict[str, str]:
        """The records storage holds for this list."""
        return dict(self._texts)

    def apply(self, req: m.SendLocalListRequest, *, max_entries: int,
              max_bytes: int | None = None) -> tuple[m.SendLocalListStatus, StoreRecords | None]:
        """Apply a SendLocalListRequest: (status, the one atomic change to store, or None
        when nothing changes)."""
        v = req.version_number
        if v <= 0:
            return m.SendLocalListStatus.Failed, None
        entries = req.local_authorization_list or []
        kv = {VERSION_KEY: str(v)}
        if req.update_type == m.Update.Full:
            new: dict[str, str] = {}
            infos: dict[str, m.IdTokenInfo] = {}
            for d in entries:
                if d.id_token_info is None:
                    continue
                key = token_key(d.id_token)
                new[key] = _encode(d).decode()
                infos[key] = d.id_token_info
            size = sum(_size(k, t) for k, t in new.items())
            if len(new) > max_entries or (max_bytes is not None and size > max_bytes):
                return m.SendLocalListStatus.Failed, None
            self._infos, self._texts, self._bytes, self._version = infos, new, size, v
            return m.SendLocalListStatus.Accepted, StoreRecords(TABLE, upserts=dict(new), clear=True, kv=kv)

        if v <= self._version:
            return m.SendLocalListStatus.VersionMismatch, None
        upserts: dict[str, tuple[str, m.IdTokenInfo]] = {}
        removals: set[str] = set()
        for d in entries:
            key = token_key(d.id_token)
            if d.id_token_info is None:
                upserts.pop(key, None)
                removals.add(key)
            else:
                removals.discard(key)
                upserts[key] = (_encode(d).decode(), d.id_token_info)
        deletes = sorted(k for k in removals if k in self._infos)
        count = len(self._infos) - len(deletes) + sum(1 for k in upserts if k not in self._infos)
        size = (self._bytes - sum(_size(k, self._texts[k]) for k in deletes)
                + sum(_size(k, t) - (_size(k, self._texts[k]) if k in self._texts else 0)
                      for k, (t, _) in upserts.items()))
        if count > max_entries or (max_bytes is not None and size > max_bytes):
            return m.SendLocalListStatus.Failed, None
        for k in deletes:
            del self._infos[k], self._texts[k]
        for k, (t, info) in upserts.items():
            self._texts[k] = t
            self._infos[k] = info
        self._bytes, self._version = size, v
        return m.SendLocalListStatus.Accepted, StoreRecords(
            TABLE, upserts={k: t for k, (t, _) in upserts.items()}, deletes=tuple(deletes), kv=kv)
