"""Writes that outlive a storage that cannot be written (disk full, read-only file system).

The runtime reads and writes through a StorageGuard. While the storage can be written the
guard passes everything through. When a write fails (StorageUnwritable) that write and
every later one are kept in memory, IN ORDER, as one net change: a later write of a key
replaces an earlier one, a table's clear drops what came before it. The guard tries every
RETRY_INTERVAL seconds to store that change as ONE transaction, so the database goes from
its state before the failure straight to the latest state (every StoreRecords change and
their order kept, never a mix). With nothing kept, a probe write tells whether storage
works again. Reads see the kept change, so a soft reboot while storage fails reloads the
latest state.

Memory: the kept change holds the latest value per key only: device-model values,
station-state values and the records the domain holds in memory anyway, plus one tombstone
per deleted record that the file holds. A record added and deleted while storage fails (a
TransactionEvent delivered meanwhile) leaves nothing. So it grows with the number of
distinct keys, never with the number of writes, however long storage fails.

Group commit (docs/durability.md): a `deferred` write (the delete of a delivered queue
record: losing it only repeats an at-least-once delivery) is not committed on its own. It
waits in memory, seen by reads, and goes into the file in the same transaction as the next
durable write, or by `flush()`: once `commit_delay` seconds have passed since the first one
waiting (`flush_at`; the runtime's event loop wakes for it), once MAX_DEFERRED keys wait,
and, without the disk flush (`durable=False`, synchronous=NORMAL), before the runtime sends
the next message of the durable queue. So a replay of queued messages costs no fsync per
message, while every durable write still commits (synchronous=FULL) before the runtime
carries out the next effect.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import trio

from ports.storage import Storage, StorageUnwritable

log = logging.getLogger("evse.station")

RETRY_INTERVAL = 5.0      # s between attempts to store what is kept while storage fails
COMMIT_DELAY = 0.5        # s a deferred write may wait for the next durable write (default)
MAX_DEFERRED = 1000       # deferred keys waiting at most: then they are committed at once


@dataclass
class _KeptTable:
    clear: bool = False                                        # the table is cleared first
    rows: dict[str, str | None] = field(default_factory=dict)  # None: delete


class StorageGuard:
    def __init__(self, now: Callable[[], float] = trio.current_time, *, commit_delay: float = COMMIT_DELAY) -> None:
        self._now = now
        self.commit_delay = commit_delay
        self.flush_at = math.inf            # when the deferred writes are committed at the latest
        self._deferred: dict[str, dict[str, str | None]] = {}   # table -> key -> value (None: delete)
        self._deferred_count = 0
        self.storage: Storage | None = None
        self.failing: str | None = None     # why storage cannot be written, while it cannot
        self.discovered = False             # a write has just found that out (the runtime clears it)
        self.retry_at = math.inf            # when to try again
        self._tables: dict[str, _KeptTable] = {}
        self._kv: dict[str, str | None] = {}
        self._variables: dict[tuple[str, str], str] = {}
        self._stored_keys: dict[str, set[str]] = {}             # table -> keys the file holds

    # --- life cycle -------------------------------------------------------------------------
    def attach(self, storage: Storage) -> None:
        """The storage of a new boot cycle: what is kept is stored now if it can be; with nothing
        kept a probe write finds out whether storage can be written (`failing` says why not)."""
        self.storage = storage
        self._stored_keys.clear()
        self.retry()

    def detach(self, *, stopping: bool) -> None:
        """End of a boot cycle: close the storage. What is still kept stays for the next cycle,
        or, when the station stops, is tried once more and otherwise lost (logged)."""
        assert self.storage is not None
        try:
            self.flush()
            if stopping and self.failing is not None and not self.retry() and self.kept():
                log.error("storage: stopping with %d change(s) that could not be stored (%s); they are lost",
                          self.kept(), self.failing)
        finally:
            self.storage.close()
            self.storage = None

    def kept(self) -> int:
        """How many keys are kept in memory."""
        return sum(len(t.rows) + t.clear for t in self._tables.values()) + len(self._kv) + len(self._variables)

    def retry(self) -> bool:
        """Store what is kept as one change (with nothing kept: probe). True when that worked:
        storage can be written and nothing is kept any more."""
        assert self.storage is not None
        try:
            if self.kept():
                self.storage.write_changes({t: (k.clear, k.rows) for t, k in self._tables.items()},
                                           self._kv, self._variables)
            else:
                self.storage.probe()
        except StorageUnwritable as exc:
            self.failing = self.failing or str(exc)
            self.retry_at = self._now() + RETRY_INTERVAL
            return False
        self._tables, self._kv, self._variables = {}, {}, {}
        self._stored_keys.clear()
        self.failing, self.retry_at = None, math.inf
        return True

    # --- reads: the file, with what is kept on top ---------------------------------------------
    def get(self, key: str) -> str | None:
        if key in self._kv:
            return self._kv[key]
        return self.storage.get(key)

    def load_variables(self) -> dict[tuple[str, str], str]:
        values = self.storage.load_variables()
        values.update(self._variables)
        return values

    def load_records(self, table: str) -> dict[str, str]:
        kept = self._tables.get(table)
        if kept is None:
            records = self.storage.load_records(table)
        else:
            records = {} if kept.clear else self.storage.load_records(table)
            _apply_rows(records, kept.rows)
        if table in self._deferred:
            _apply_rows(records, self._deferred[table])
        return records

    # --- writes: through while storage works, else kept behind what is kept already ------------
    def put(self, key: str, value: str | None) -> None:
        if self.failing is None:
            try:
                if self._deferred:
                    return self._with_deferred({}, {key: value}, {})
                return self.storage.put(key, value)
            except StorageUnwritable as exc:
                self._found(exc)
        self._kv[key] = value

    def save_variable(self, key: str, value: str, attribute: str = "Actual") -> None:
        if self.failing is None:
            try:
                if self._deferred:
                    return self._with_deferred({}, {}, {(key, attribute): value})
                return self.storage.save_variable(key, value, attribute)
            except StorageUnwritable as exc:
                self._found(exc)
        self._variables[(key, attribute)] = value

    def write_records(self, table: str, upserts: Mapping[str, str] = {}, deletes: Iterable[str] = (),
                      *, clear: bool = False, kv: Mapping[str, str | None] = {}, deferred: bool = False) -> None:
        """One atomic change, durable when this returns; `deferred` (deletes and upserts only):
        committed later, with the next durable write or by `flush()` (see the module's docstring)."""
        if self.failing is None:
            if deferred:
                return self._defer(table, upserts, deletes)
            try:
                if self._deferred:
                    rows = dict(self._deferred.get(table, {})) if not clear else {}
                    rows.update(dict.fromkeys(deletes))
                    rows.update(upserts)
                    return self._with_deferred({table: (clear, rows)}, kv, {})
                return self.storage.write_records(table, upserts, deletes, clear=clear, kv=kv)
            except StorageUnwritable as exc:
                self._found(exc)
        self._keep(table, upserts, deletes, clear=clear, kv=kv)

    @property
    def deferred(self) -> bool:
        """Deferred writes wait to be committed."""
        return bool(self._deferred)

    def flush(self, *, durable: bool = True) -> None:
        """Commit the deferred writes now (one transaction); `durable=False`: without flushing
        them to the disk (they survive a crash of the process, not a power loss; the next
        durable write makes them durable). Storage that cannot take them keeps them with
        everything kept (`failing`, `discovered` set, as for any write)."""
        self.flush_at = math.inf
        if not self._deferred or self.failing is not None:
            return
        try:
            self._with_deferred({}, {}, {}, durable=durable)
        except StorageUnwritable as exc:
            self._found(exc)

    def _defer(self, table: str, upserts: Mapping[str, str], deletes: Iterable[str]) -> None:
        rows = self._deferred.setdefault(table, {})
        before = len(rows)
        rows.update(dict.fromkeys(deletes))
        rows.update(upserts)
        self._deferred_count += len(rows) - before
        if self.flush_at == math.inf:
            self.flush_at = self._now() + self.commit_delay
        if self._deferred_count >= MAX_DEFERRED or self.commit_delay <= 0:
            self.flush()

    def _with_deferred(self, records: dict[str, tuple[bool, Mapping[str, str | None]]],
                       kv: Mapping[str, str | None], variables: Mapping[tuple[str, str], str], *,
                       durable: bool = True) -> None:
        """The deferred writes and one durable change (whose rows, for its tables, already hold
        the deferred ones) as ONE transaction; on StorageUnwritable the deferred writes are kept
        (the caller keeps its change)."""
        changes = {t: (False, rows) for t, rows in self._deferred.items() if t not in records}
        changes.update(records)
        try:
            self.storage.write_changes(changes, kv, variables, durable=durable)
        except StorageUnwritable:
            deferred, self._deferred, self._deferred_count = self._deferred, {}, 0
            for table, rows in deferred.items():
                self._keep(table, {k: v for k, v in rows.items() if v is not None},
                           [k for k, v in rows.items() if v is None])
            raise
        self._deferred, self._deferred_count, self.flush_at = {}, 0, math.inf

    def _keep(self, table: str, upserts: Mapping[str, str], deletes: Iterable[str], *, clear: bool = False,
              kv: Mapping[str, str | None] = {}) -> None:
        """Keep a write in memory behind what is kept already (storage is failing)."""
        kept = self._tables.setdefault(table, _KeptTable())
        if clear:
            kept.clear = True
            kept.rows.clear()
        for key in deletes:
            if kept.clear or key not in self._keys_in_file(table):
                kept.rows.pop(key, None)      # nothing to delete in the file: no tombstone
            else:
                kept.rows[key] = None
        kept.rows.update(upserts)
        self._kv.update(kv)

    def _found(self, exc: StorageUnwritable) -> None:
        """A write has found storage failing: it and every later write are kept from now on."""
        self.failing, self.discovered = str(exc), True
        self.retry_at = self._now() + RETRY_INTERVAL

    def _keys_in_file(self, table: str) -> set[str]:
        """The table's keys in the file (read once per failure: nothing reaches the file meanwhile)."""
        keys = self._stored_keys.get(table)
        if keys is None:
            keys = self._stored_keys[table] = set(self.storage.load_records(table))
        return keys


def _apply_rows(records: dict[str, str], rows: Mapping[str, str | None]) -> None:
    for key, value in rows.items():
        if value is None:
            records.pop(key, None)
        else:
            records[key] = value
