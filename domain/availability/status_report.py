"""What the CSMS is told about availability and hardware parts (G01, B01/B04, G03/G04).

StatusNotification + NotifyEvent(AvailabilityState) for every connector whose status
changed since it was last reported, NotifyEvent(AvailabilityState) for EVSEs and the
station itself, and NotifyEvents for the Problem/Tripped variables of hardware parts.
This module only decides which messages; the station queues them (and decides when:
only once registered and online).
"""
from __future__ import annotations

from datetime import datetime

from domain import messages as m
from domain.availability.model import STATION, Target
from domain.evse import Evse

PartKey = tuple[str, str, int | None]       # (component, variable, evse)


class StatusReport:
    def __init__(self, evses: dict[int, Evse], event_id_seed: int) -> None:
        self.evses = evses
        self.parts: dict[PartKey, bool] = {}        # hardware component variables now true/false
        self._station_reported: str | None = None    # last ChargingStation AvailabilityState sent
        self._next_event_id = event_id_seed

    def station_availability(self) -> str:
        states = [e.status() for e in self.evses.values()]
        if all(s in ("Unavailable", "Faulted") for s in states):
            return "Faulted" if "Faulted" in states else "Unavailable"
        return "Available"

    def forget(self, target: Target = STATION) -> None:
        """Report the target (default: everything) again, changed or not."""
        if target == STATION:
            self._station_reported = None
        for e in self.evses.values():
            if target[0] in (0, e.id):
                if target[1] == 0:
                    e.reported = None
                for c in e.connectors.values():
                    if target[1] in (0, c.connector):
                        c.reported = None

    def changed(self, ts: datetime) -> list[m.StatusNotificationRequest | m.NotifyEventRequest]:
        """The messages for every status that differs from the last one reported."""
        out: list[m.StatusNotificationRequest | m.NotifyEventRequest] = []
        for e in self.evses.values():
            for c in e.connectors.values():
                status = c.status(e.fault)
                if status == c.reported:
                    continue
                c.reported = status
                out.append(m.StatusNotificationRequest(
                    timestamp=ts, connector_status=m.ConnectorStatus(status), evse_id=e.id, connector_id=c.connector))
                out.append(self.availability_event(
                    ts, status, m.Component(name="Connector", evse=m.EVSE(id=e.id, connector_id=c.connector))))
            status = e.status()
            if status != e.reported:
                e.reported = status
                out.append(self.availability_event(ts, status, m.Component(name="EVSE", evse=m.EVSE(id=e.id))))
        status = self.station_availability()
        if status != self._station_reported:
            self._station_reported = status
            out.append(self.availability_event(ts, status, m.Component(name="ChargingStation")))
        return out

    def availability_event(self, ts: datetime, status: str, component: m.Component) -> m.NotifyEventRequest:
        return self._event(ts, component, "AvailabilityState", status)

    def part_changed(self, component: str, variable: str, value: bool, evse: int | None, detail: str,
                     ts: datetime) -> m.NotifyEventRequest | None:
        """A hardware part's Problem/Tripped changed (None: it had that value already)."""
        key = (component, variable, evse)
        if self.parts.get(key, False) == value:
            return None
        self.parts[key] = value
        return self._event(ts, m.Component(name=component, evse=m.EVSE(id=evse) if evse else None), variable,
                           "true" if value else "false", cleared=None if value else True,
                           tech_info=detail[:500] or None)

    def _event(self, ts: datetime, component: m.Component, variable: str, value: str, *,
               cleared: bool | None = None, tech_info: str | None = None) -> m.NotifyEventRequest:
        self._next_event_id += 1
        return m.NotifyEventRequest(generated_at=ts, seq_no=0, event_data=[m.EventData(
            event_id=self._next_event_id, timestamp=ts, trigger=m.EventTrigger.Delta, actual_value=value,
            cleared=cleared, tech_info=tech_info, component=component, variable=m.Variable(name=variable),
            event_notification_type=m.EventNotification.HardWiredNotification)])
