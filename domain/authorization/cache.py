"""The Authorization Cache (OCPP 2.0.1 C10, C11, C12): idTokenInfos the CSMS sent, kept
for local authorization.

Pure: the records come in at construction (storage table "auth_cache"), every change is
handed out by `take_changes()` as one `StoreRecords`, and time comes in as arguments.

Records
-------
key: `token_key(idToken)` ("ISO14443:04a2b3c4"); value: compact JSON

    {"i": <IdTokenInfo as on the wire>, "s": stored_at, "x": hard_expiry, "u": last_used, "n": uses}

times in seconds since the Unix epoch (UTC, at most 3 decimals). "x" is the
idTokenInfo's cacheExpiryDateTime (left out when it has none); the LifeTime expiry is
computed on reading from "u" and the current AuthCacheCtrlr.LifeTime, so a LifeTime the
CSMS changes applies to entries already cached.

Expiry (C10.FR.10 and C10.FR.13 as changed by the 2025-01 errata)
------------------------------------------------------------------
An entry expires when the current time is past its cacheExpiryDateTime (C10.FR.13), or
when more than LifeTime seconds have passed since it was last used or updated (C10.FR.10;
AuthCacheCtrlr.LifeTime: "how long it takes until a token expires in the authorization
cache since it is last used"). The requirement allows "removed or changed to Expired";
this cache means **removed**: `lookup` still returns the entry with `expired=True` (for
logs), but the authorizer treats it exactly like a token that is not cached (online: ask
the CSMS; offline: unknown). The errata's note says why: a cacheExpiryDateTime in the
past is meant to keep a token (e.g. a prepaid account) out of the cache, so an expired
entry must not keep vouching for - or against - the token. An update whose
cacheExpiryDateTime is already past removes the entry and stores nothing. Expired entries
are dropped physically by `purge_expired` and first of all when room is needed.

Size and replacement (C-53, C-54)
---------------------------------
`size_bytes()` is the UTF-8 size of all keys and values (AuthCacheCtrlr.Storage).
When an update makes it exceed `max_bytes` (the maxLimit of AuthCacheCtrlr.Storage),
entries are removed until it fits: expired entries first, then by AuthCacheCtrlr.Policy
- LRU: least recently used (last use or update) first;
- LFU: fewest uses first, ties by least recently used.
The entry being stored is never the victim, unless it alone exceeds `max_bytes` (then it
is not stored). Lookups are one dict access; eviction uses lazily cleaned heaps
(O(log n) per change, compacted when they hold twice the live entries).

Persistence of uses
-------------------
`touch` (the entry was used for a decision) updates last_used and uses in memory and
marks the record dirty; `take_changes()` hands out one upsert per dirty record, so a hit
costs at most one small write however often the runtime flushes, and many hits between
two flushes cost one write per token. A touch lost in a power cut only makes the entry
look older (it expires or is replaced a little earlier): harmless.
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime

import msgspec

from domain import messages as m
from domain.authorization.tokens import token_key
from domain.effects import StoreRecords

TABLE = "auth_cache"
DEFAULT_LIFETIME_S = 604800           # the definition default of AuthCacheCtrlr.LifeTime
DEFAULT_MAX_BYTES = 1048576           # the definition maxLimit of AuthCacheCtrlr.Storage
POLICIES = ("LRU", "LFU")


class _Record(msgspec.Struct, kw_only=True):
    i: msgspec.Raw
    s: float
    x: float | None = None
    u: float
    n: int = 1


_record_decoder = msgspec.json.Decoder(_Record)
_info_decoder = msgspec.json.Decoder(m.IdTokenInfo)
_encode = msgspec.json.encode


class CacheHit(msgspec.Struct, frozen=True, gc=False):
    """A cached entry: the IdTokenInfo the CSMS sent, and whether the entry has expired
    (past its cacheExpiryDateTime or LifeTime; see the module text: expired = absent).
    (A frozen Struct: built on every lookup, it costs a sixth of a frozen dataclass.)"""

    info: m.IdTokenInfo
    expired: bool


class _Entry:
    __slots__ = ("info", "info_json", "s", "x", "u", "n", "seq", "size")

    def __init__(self, info: m.IdTokenInfo, info_json: str, s: float, x: float | None, u: float, n: int):
        self.info = info
        self.info_json = info_json
        self.s = s
        self.x = x
        self.u = u
        self.n = n
        self.seq = 0
        self.size = 0


def _num(t: float) -> str:
    r = round(t, 3)
    return str(int(r)) if r == int(r) else repr(r)


def _text(e: _Entry) -> str:
    x = "" if e.x is None else f',"x":{_num(e.x)}'
    return f'{{"i":{e.info_json},"s":{_num(e.s)}{x},"u":{_num(e.u)},"n":{e.n}}}'


def _ts(t: datetime) -> float:
    """Epoch seconds as stored (ms), so that a reloaded entry is the entry that was stored."""
    return round(t.timestamp(), 3)


class AuthCache:
    """The authorization cache, built from the records of table "auth_cache"."""

    def __init__(self, records: Mapping[str, str] = {}, *, lifetime_s: int = DEFAULT_LIFETIME_S) -> None:
        self.lifetime_s = lifetime_s          # the LifeTime `lookup` uses unless told; `update` sets it
        self._entries: dict[str, _Entry] = {}
        self._bytes = 0
        self._seq = 0
        self._recency: list[tuple[float, int, str]] = []           # (last_used, seq, key)
        self._frequency: list[tuple[int, float, int, str]] = []    # (uses, last_used, seq, key)
        self._hard: list[tuple[float, str]] = []                   # (cacheExpiryDateTime, key)
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()
        self._cleared = False
        loaded = []
        for key, text in records.items():
            try:
                r = _record_decoder.decode(text)
                info = _info_decoder.decode(r.i)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                self._deleted.add(key)          # unreadable: drop it from storage too
                continue
            loaded.append((r.u, key, info, bytes(r.i).decode(), r))
        loaded.sort(key=lambda t: (t[0], t[1]))
        for _, key, info, info_json, r in loaded:
            e = _Entry(info, info_json, r.s, r.x, r.u, r.n)
            self._set_size(key, e)
            self._add(key, e)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: m.IdToken) -> bool:
        return token_key(token) in self._entries

    def size_bytes(self) -> int:
        """Bytes the cache's records use (keys and values, UTF-8): AuthCacheCtrlr.Storage."""
        return self._bytes

    def lookup(self, token: m.IdToken, now_utc: datetime, *, lifetime_s: int | None = None) -> CacheHit | None:
        """The entry of `token`, or None. `lifetime_s` defaults to `self.lifetime_s`."""
        e = self._entries.get(token_key(token))
        if e is None:
            return None
        return CacheHit(e.info, self._expired(e, now_utc.timestamp(),
                                              self.lifetime_s if lifetime_s is None else lifetime_s))

    def records(self) -> dict[str, str]:
        """The records storage holds once every change has been written."""
        return {k: _text(e) for k, e in self._entries.items()}

    @staticmethod
    def _expired(e: _Entry, now: float, lifetime_s: int) -> bool:
        return (e.x is not None and now > e.x) or now - e.u > lifetime_s

    # ------------------------------------------------------------------ changing
    def update(self, token: m.IdToken, info: m.IdTokenInfo, now_utc: datetime, *, lifetime_s: int,
               policy: str, max_bytes: int, used: bool = True) -> None:
        """Store the idTokenInfo the CSMS sent for `token` (AuthorizeResponse: C10.FR.04,
        TransactionEventResponse: C10.FR.05; pass `used=False` for the latter so that one
        presentation is not counted twice by LFU). A cacheExpiryDateTime already past removes
        the entry instead (C10.FR.13). Whether to cache at all is `authorizer.should_cache`."""
        if policy not in POLICIES:
            raise ValueError(f"unknown cache policy {policy!r}")
        self.lifetime_s = lifetime_s
        now = _ts(now_utc)
        key = token_key(token)
        x = None if info.cache_expiry_date_time is None else _ts(info.cache_expiry_date_time)
        if x is not None and now > x:
            self._remove(key)
            return
        old = self._entries.get(key)
        uses = (old.n if old is not None else 0) + (1 if used or old is None else 0)
        if old is not None:
            self._unlink(key, old)
        e = _Entry(info, _encode(info).decode(), now, x, now, uses)
        self._set_size(key, e)
        self._add(key, e)
        self._changed(key)
        if self._bytes > max_bytes:
            self._make_room(now, max_bytes, policy, keep=key)

    def touch(self, token: m.IdToken, now_utc: datetime, *, lifetime_s: int | None = None) -> bool:
        """The entry was used to authorize: count the use (LFU) and restart its LifeTime.
        An expired entry is not revived (False, nothing changes); False when not cached."""
        if lifetime_s is not None:
            self.lifetime_s = lifetime_s
        key = token_key(token)
        e = self._entries.get(key)
        now = _ts(now_utc)
        if e is None or self._expired(e, now, self.lifetime_s):
            return False
        self._bytes -= e.size
        e.u = max(e.u, now)
        e.n += 1
        self._set_size(key, e)
        self._bytes += e.size
        self._index(key, e)
        self._changed(key)
        return True

    def discard(self, token: m.IdToken) -> bool:
        """Remove the entry of `token`; False when there was none."""
        key = token_key(token)
        found = key in self._entries
        self._remove(key)
        return found

    def purge_expired(self, now_utc: datetime, *, lifetime_s: int | None = None) -> int:
        """Remove every expired entry (C10.FR.10, C10.FR.13); returns how many."""
        if lifetime_s is not None:
            self.lifetime_s = lifetime_s
        now = _ts(now_utc)
        n = 0
        while (key := self._pop_expired(now, keep=None)) is not None:
            self._remove(key)
            n += 1
        return n

    def clear(self) -> None:
        """Empty the cache (ClearCacheRequest, C11.FR.02)."""
        self._entries.clear()
        self._recency.clear()
        self._frequency.clear()
        self._hard.clear()
        self._bytes = 0
        self._dirty.clear()
        self._deleted.clear()
        self._cleared = True

    def take_changes(self) -> StoreRecords | None:
        """All persistence work since the last call, as one atomic StoreRecords, or None."""
        if not (self._cleared or self._dirty or self._deleted):
            return None
        upserts = {k: _text(self._entries[k]) for k in sorted(self._dirty)}
        change = StoreRecords(TABLE, upserts=upserts, deletes=tuple(sorted(self._deleted)), clear=self._cleared)
        self._dirty.clear()
        self._deleted.clear()
        self._cleared = False
        return change

    # ------------------------------------------------------------------ internals
    def _set_size(self, key: str, e: _Entry) -> None:
        e.size = len(key.encode()) + len(_text(e).encode())

    def _changed(self, key: str) -> None:
        self._dirty.add(key)
        self._deleted.discard(key)

    def _add(self, key: str, e: _Entry) -> None:
        self._entries[key] = e
        self._bytes += e.size
        self._index(key, e)
        if e.x is not None:
            heapq.heappush(self._hard, (e.x, key))

    def _index(self, key: str, e: _Entry) -> None:
        self._seq += 1
        e.seq = self._seq
        heapq.heappush(self._recency, (e.u, e.seq, key))
        heapq.heappush(self._frequency, (e.n, e.u, e.seq, key))
        if len(self._recency) > 2 * len(self._entries) + 64:
            self._compact()

    def _compact(self) -> None:
        es = self._entries
        self._recency = [(e.u, e.seq, k) for k, e in es.items()]
        self._frequency = [(e.n, e.u, e.seq, k) for k, e in es.items()]
        self._hard = [(e.x, k) for k, e in es.items() if e.x is not None]
        for h in (self._recency, self._frequency, self._hard):
            heapq.heapify(h)

    def _unlink(self, key: str, e: _Entry) -> None:
        del self._entries[key]
        self._bytes -= e.size

    def _remove(self, key: str) -> None:
        e = self._entries.get(key)
        if e is None:
            return
        self._unlink(key, e)
        self._dirty.discard(key)
        self._deleted.add(key)

    def _live(self, item: tuple) -> bool:
        e = self._entries.get(item[-1])
        return e is not None and e.seq == item[-2]

    def _pop_expired(self, now: float, keep: str | None) -> str | None:
        """An expired entry (other than `keep`), taken off the heap, or None."""
        hard = self._hard
        while hard:
            x, key = hard[0]
            e = self._entries.get(key)
            if e is None or e.x != x:
                heapq.heappop(hard)              # stale
                continue
            if now > x and key != keep:
                heapq.heappop(hard)
                return key
            break
        rec = self._recency
        while rec:
            item = rec[0]
            if not self._live(item):
                heapq.heappop(rec)
                continue
            if now - item[0] > self.lifetime_s and item[2] != keep:
                heapq.heappop(rec)
                return item[2]
            break
        return None

    def _pop_victim(self, heap: list, keep: str) -> str | None:
        held = None
        victim = None
        while heap:
            item = heapq.heappop(heap)
            if not self._live(item):
                continue
            if item[-1] == keep:
                held = item
                continue
            victim = item[-1]
            break
        if held is not None:
            heapq.heappush(heap, held)
        return victim

    def _make_room(self, now: float, max_bytes: int, policy: str, keep: str) -> None:
        while self._bytes > max_bytes and (key := self._pop_expired(now, keep)) is not None:
            self._remove(key)
        heap = self._recency if policy == "LRU" else self._frequency
        while self._bytes > max_bytes:
            key = self._pop_victim(heap, keep)
            if key is None:                      # `keep` alone is too big: it is not stored
                self._remove(keep)
                return
            self._remove(key)
