"""Operative / Inoperative (OCPP 2.0.1 G03/G04, ChangeAvailability).

The CSMS sets the station, an EVSE or a connector Operative or Inoperative. A change
that would interrupt a running transaction is Scheduled and applied when the
transactions it concerns have ended (G03.FR.05/06). What the CSMS set is kept
durably (one station-state value) so it survives a reboot and a power loss (TC_B_23);
a scheduled change is kept too, so it is not forgotten by a restart either.

A connector is usable when the station, its EVSE and itself are all Operative; the
station turns this into the connector's `operative` flag (status Unavailable).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

AVAILABILITY_KEY = "availability"          # station-state key of the stored settings

# A target: (0, 0) the station, (evse, 0) an EVSE, (evse, connector) a connector.
Target = tuple[int, int]
STATION: Target = (0, 0)


@dataclass
class Availability:
    inoperative: set[Target] = field(default_factory=set)
    scheduled: dict[Target, bool] = field(default_factory=dict)     # target -> operative

    # --- storage -------------------------------------------------------------------------
    @classmethod
    def load(cls, raw: str | None, layout: dict[int, int]) -> tuple["Availability", str | None]:
        """From the stored value; an unreadable value or a target the layout no longer
        has is dropped with a warning (the station then starts Operative there)."""
        a = cls()
        if not raw:
            return a, None
        try:
            data = json.loads(raw)
            inoperative = {_target(t) for t in data.get("inoperative", [])}
            scheduled = {_target(t): bool(op) for t, op in data.get("scheduled", [])}
        except (ValueError, TypeError, AttributeError) as exc:
            return a, f"stored availability unreadable ({exc}); every connector starts Operative"
        a.inoperative = {t for t in inoperative if exists(t, layout)}
        a.scheduled = {t: op for t, op in scheduled.items() if exists(t, layout)}
        dropped = len(inoperative) + len(scheduled) - len(a.inoperative) - len(a.scheduled)
        return a, (f"stored availability names {dropped} EVSE/connector(s) this layout does not have"
                   if dropped else None)

    def dump(self) -> str:
        return json.dumps({"inoperative": sorted(self.inoperative),
                           "scheduled": sorted([list(t), op] for t, op in self.scheduled.items())},
                          separators=(",", ":"))

    # --- queries --------------------------------------------------------------------------
    def connector_operative(self, evse: int, connector: int) -> bool:
        i = self.inoperative
        return STATION not in i and (evse, 0) not in i and (evse, connector) not in i

    def operative(self, target: Target) -> bool:
        return target not in self.inoperative

    # --- changes --------------------------------------------------------------------------
    def set(self, target: Target, operative: bool) -> None:
        self.scheduled.pop(target, None)
        if operative:
            self.inoperative.discard(target)
        else:
            self.inoperative.add(target)

    def schedule(self, target: Target, operative: bool) -> None:
        self.scheduled[target] = operative

    def due(self, busy_evses: set[int]) -> list[tuple[Target, bool]]:
        """Scheduled changes whose EVSEs have no transaction any more."""
        return [(t, op) for t, op in self.scheduled.items()
                if not (busy_evses if t == STATION else busy_evses & {t[0]})]


def exists(target: Target, layout: dict[int, int]) -> bool:
    """Whether the target is in the layout {evse: connector count}."""
    evse, connector = target
    if evse == 0:
        return connector == 0
    return evse in layout and 0 <= connector <= layout[evse]


def _target(value) -> Target:
    evse, connector = value
    if not isinstance(evse, int) or not isinstance(connector, int):
        raise TypeError("target is not two integers")
    return evse, connector
