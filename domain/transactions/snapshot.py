"""What a transaction state machine stores after every message and takes back after a restart
(a part of EvseTransactions, see fsm.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from domain import messages as m
from domain.transactions.state import CS, INF, R, SNAPSHOT_VERSION, _Tx


class Snapshots:
    """The persistence part of EvseTransactions."""

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The state to persist (JSON-compatible). Persist it after every input that returned
        a message, before sending that message, so seqNo continues after a restart. The
        TxEndedInterval series collected for the Ended event is not part of it."""
        tx = self._tx
        data: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "evse": self.evse_id,
            "connector": self._connector,
            "occupied": self._occupied,
            "demand": self._demand,
            "path": self._path,
            "path_cmd": self._path_cmd,
            "fault": self._fault,
            "id_token": None if self._token is None else msgspec.to_builtins(self._token),
            "remote_start_id": self._remote_start_id,
            "remote_pending": self._remote_pending,
            "blocked": self._blocked,
            "invalid_budget_wh": self._invalid_budget_wh,
            "invalid_base_wh": self._invalid_base_wh,
            "tx": None,
        }
        if tx is not None:
            charged = tx.charged_s
            if now is not None and tx.charging_since is not None:
                charged += now - tx.charging_since
            data["tx"] = {
                "id": tx.id,
                "seq": tx.seq,
                "seen": tx.seen,
                "reported_state": None if tx.reported_state is None else tx.reported_state.value,
                "stop_reason": None if tx.stop_reason is None else tx.stop_reason.value,
                "stopping": tx.stopping,
                "token_reported": tx.token_reported,
                "evse_reported": tx.evse_reported,
                "charged_s": charged,
                "begin_energy_wh": tx.begin_energy_wh,
                "started": tx.started,
            }
        return data

    def restore(self, data: dict[str, Any], now: float, utc: datetime) -> None:
        """Take the state of `snapshot()` back (timers and samplers restart from `now`)."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown transaction snapshot version {data.get('version')!r}")
        self._connector = data["connector"]
        self._occupied = bool(data["occupied"])
        self._demand = data["demand"]
        self._path = bool(data["path"])
        self._path_cmd = bool(data["path_cmd"])
        self._fault = data["fault"]
        token = data["id_token"]
        self._token = None if token is None else msgspec.convert(token, m.IdToken)
        self._remote_start_id = data["remote_start_id"]
        self._remote_pending = bool(data["remote_pending"])
        self._blocked = bool(data["blocked"])
        self._invalid_budget_wh = data["invalid_budget_wh"]
        self._invalid_base_wh = data["invalid_base_wh"]
        t = data["tx"]
        self._tx = None
        if t is not None:
            tx = self._tx = _Tx(
                id=t["id"], seq=int(t["seq"]), seen=int(t["seen"]),
                reported_state=None if t["reported_state"] is None else CS(t["reported_state"]),
                stop_reason=None if t["stop_reason"] is None else R(t["stop_reason"]),
                stopping=bool(t["stopping"]), token_reported=bool(t["token_reported"]),
                evse_reported=bool(t["evse_reported"]), charged_s=float(t["charged_s"]),
                begin_energy_wh=t["begin_energy_wh"], started=t.get("started"),
            )
            if self._charging():
                tx.charging_since = now
            self._arm_samplers(now, utc)
        else:
            self._sample_due = INF
        self._last_conds = self._conditions()
        self._ev_timeout_at = None
        self._refresh_timer(now)

