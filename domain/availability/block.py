"""Block G Availability as the station runs it.

- ChangeAvailability (G03/G04): the station, an EVSE or a connector Operative or Inoperative;
  a change that would interrupt a running transaction is Scheduled and applied when it has
  ended (G03.FR.05/06); the setting is stored (TC_B_23). An EVSE that goes Unavailable ends
  an authorization not yet used (and one still asked for). An EV plugged into an Unavailable
  connector reaches the transactions when the connector becomes usable again, as if plugged
  in at that moment (Occupied, TxStartPoint EVConnected starts a transaction).
- Faults of an EVSE (FaultRaised / FaultCleared): Faulted while any lasts, the transaction
  ends by the first (AbnormalCondition), and the device-model variable of the part that
  reports it follows (NotifyEvent); problems of parts that fault no EVSE (DeviceProblem).
- While storage cannot be written, every EVSE goes Unavailable as after a station-wide
  Inoperative (domain/storage_health.py), without storing anything; so do the EVSEs without a
  transaction while another block holds them (`hold`: a firmware update waiting to install,
  L01.FR.07).
- Status reporting (G01, B01/B04): at the end of every input that may have changed a status,
  StatusNotification + NotifyEvent(AvailabilityState) for what changed, once registered and
  online (changes made offline go out after reconnecting).
"""
from __future__ import annotations

from domain import messages as m
from domain.availability.model import AVAILABILITY_KEY, STATION, Availability, Target, exists
from domain.availability.status_report import StatusReport
from domain.block import Block
from domain.context import Context
from domain.device_model import VariableRef
from domain.effects import Remember
from domain.hardware_events import DeviceProblem, FaultCleared, FaultRaised
from domain.outbox import Registration
from domain.stored_state import StoredState

_A = m.ChangeAvailabilityStatus


class AvailabilityBlock(Block):
    name = "availability"
    needs = {"sessions": "transactions", "authorization": "authorization", "storage_health": "storage_health"}
    events = (FaultRaised, FaultCleared, DeviceProblem)
    keys = (AVAILABILITY_KEY,)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        layout = {e.id: len(e.connectors) for e in ctx.evses.values()}
        self.availability, problem = Availability.load(stored.value(AVAILABILITY_KEY), layout)
        if problem:
            ctx.log("warning", problem)
        for e in ctx.evses.values():
            for c in e.connectors.values():
                c.operative = self.availability.connector_operative(e.id, c.connector)
        self.report = StatusReport(ctx.evses, args.event_id_seed)
        self._holds: set[str] = set()       # who keeps the EVSEs without a transaction Unavailable
        self.calls = {"ChangeAvailability": self._change_availability}
        self._provide_variables()

    # --- G03/G04 ChangeAvailability ----------------------------------------------------------
    def _change_availability(self, req: m.ChangeAvailabilityRequest, now: float, size: int):
        evses = self.ctx.evses
        target: Target = STATION if req.evse is None or req.evse.id == 0 else \
            (req.evse.id, req.evse.connector_id or 0)
        if not exists(target, {e.id: len(e.connectors) for e in evses.values()}):
            return m.ChangeAvailabilityResponse(status=_A.Rejected, status_info=m.StatusInfo(
                reason_code="UnknownEvse" if target[0] not in evses else "UnknownConnector"))
        operative = req.operational_status == m.OperationalStatus.Operative
        concerned = set(evses) if target == STATION else {target[0]}
        busy = {e for e in concerned if evses[e].fsm.transaction_id is not None}
        a = self.availability
        if busy and not operative:
            # G03.FR.05 / G04.FR.04: applied once the transactions concerned have ended; for the
            # whole station, EVSEs without a transaction go Unavailable at once (TC_G_14).
            a.schedule(target, operative)
            self._store()
            self.apply(now)
            return m.ChangeAvailabilityResponse(status=_A.Scheduled)
        if not operative and not a.operative(target) and target not in a.scheduled:
            self.report.forget(target)        # Inoperative again: the current state is reported (TC_G_13/18)
        a.set(target, operative)
        self._store()
        self.apply(now)
        return m.ChangeAvailabilityResponse(status=_A.Accepted)

    def apply(self, now: float) -> None:
        """Connectors follow the availability (and a storage failure, like the station going
        Inoperative); an EVSE that is Unavailable ends the authorization it held for a session
        not yet started; a connector usable again with an EV plugged in meanwhile tells the
        transactions the EV is there, as if plugged in now (G03/G04: the plug was kept from
        them while Unavailable); changed statuses are reported."""
        a = self.availability
        station_going_off = a.scheduled.get(STATION) is False or self.storage_health.failing or bool(self._holds)
        for e in self.ctx.evses.values():
            off_now = station_going_off and e.fsm.transaction_id is None
            for c in e.connectors.values():
                usable_again = not c.operative
                c.operative = a.connector_operative(e.id, c.connector) and not off_now
                if usable_again and c.operative and c.plugged:
                    self.sessions.ev_connected(e.id, c.connector, now)
            if e.status() == "Unavailable":
                self.authorization.withdraw(e.id, "EVSE Unavailable", now)
        self.ctx.status_changed()

    def hold(self, name: str, on: bool, now: float) -> None:
        """While any hold lasts, EVSEs without a transaction are Unavailable and those whose
        transaction ends become so (as after a station-wide Inoperative, without storing it);
        released, they follow the stored availability again (L01.FR.07: a firmware update
        waiting for the transactions to end)."""
        if (name in self._holds) == on:
            return
        if on:
            self._holds.add(name)
        else:
            self._holds.discard(name)
        self.apply(now)

    def _store(self) -> None:
        self.ctx.emit(Remember(AVAILABILITY_KEY, self.availability.dump()))

    def settle(self, now: float) -> None:
        """A scheduled change whose transactions have ended is applied."""
        a = self.availability
        held = self.storage_health.failing or bool(self._holds)
        if not a.scheduled and not held:
            return              # the common case, on every frame: nothing waits for an idle EVSE
        busy = {e.id for e in self.ctx.evses.values() if e.fsm.transaction_id is not None}
        due = a.due(busy)
        if due:
            for target, operative in due:
                a.set(target, operative)
            self._store()
            self.apply(now)
        elif a.scheduled.get(STATION) is False or held:
            self.apply(now)             # an EVSE whose transaction ended goes Unavailable now

    # --- faults and parts ----------------------------------------------------------------------
    def hardware(self, event, now: float) -> None:
        if type(event) is DeviceProblem:
            self._part_changed(event.component, "Problem", event.problem, event.evse, event.detail, now)
        else:
            self._fault_event(event, now)
        self.ctx.status_changed()

    def _fault_event(self, event: FaultRaised | FaultCleared, now: float) -> None:
        """EVSE faults: Faulted while any lasts, the transaction ends by the fault (first one),
        and the reporting component's variable follows (NotifyEvent)."""
        evse = self.ctx.evses.get(event.evse)
        if evse is None:
            return
        utc = self.ctx.utc(now)
        if isinstance(event, FaultRaised):
            if event.fault in evse.faults:
                return
            first = not evse.faults
            evse.faults[event.fault] = (event.component, event.variable)
            if first:
                self.authorization.abandon(evse.id, f"fault {event.fault}")
            if event.component:
                self._part_changed(event.component, event.variable, True, evse.id, event.fault, now)
            if first:
                self.sessions.drive(evse.id, evse.fsm.abnormal(event.fault, now, utc), now)
            return
        cleared = [event.fault] if event.fault in evse.faults else list(evse.faults) if event.fault is None else []
        for fault in cleared:
            component, variable = evse.faults.pop(fault)
            if component:
                self._part_changed(component, variable, False, evse.id, f"{fault} cleared", now)
        if cleared and not evse.faults:
            self.sessions.drive(evse.id, evse.fsm.abnormal_cleared(now, utc), now)

    def _part_changed(self, component: str, variable: str, value: bool, evse: int | None, detail: str,
                      now: float) -> None:
        """A hardware component's Problem/Tripped changed: kept for the device model and told
        to the CSMS as a NotifyEvent (cleared when it ends)."""
        event = self.report.part_changed(component, variable, value, evse, detail, self.ctx.utc(now))
        if event is None:
            return
        self.ctx.log("warning" if value else "info",
                     f"{component}{f' of EVSE {evse}' if evse else ''}: {variable} "
                     f"{'true' if value else 'false'}{f' ({detail})' if detail else ''}")
        self.ctx.outbox.post(event)

    # --- status reporting ----------------------------------------------------------------------
    def report_statuses(self, now: float) -> None:
        """StatusNotification + NotifyEvent(AvailabilityState) for what changed since it was
        last reported (everything after the BootNotification is accepted, or after a longer
        offline period than OfflineThreshold: TC_B_51/52); only once accepted (B02/B03:
        nothing else is sent before) and online."""
        ctx = self.ctx
        if not ctx.statuses_changed:
            return
        if ctx.registration is not Registration.Accepted or not ctx.link_is_up:
            return
        if ctx.report_all_statuses:
            self.report.forget()
        ctx.statuses_changed = ctx.report_all_statuses = False
        for message in self.report.changed(ctx.utc(now)):
            ctx.outbox.post(message)

    def _provide_variables(self) -> None:
        dm, report = self.ctx.dm, self.report
        dm.provide(VariableRef("ChargingStation", "AvailabilityState"), lambda _now: report.station_availability())
        for d in dm.definitions():
            if d.ref.variable in ("Problem", "Tripped") and d.ref.connector is None:
                key = (d.ref.component, d.ref.variable, d.ref.evse)
                dm.provide(d.ref, lambda _now, key=key: "true" if report.parts.get(key) else "false")
        for e in self.ctx.evses.values():
            dm.provide(VariableRef("EVSE", "AvailabilityState", evse=e.id), lambda _now, e=e: e.status())
            for c in e.connectors.values():
                dm.provide(VariableRef("Connector", "AvailabilityState", evse=e.id, connector=c.connector),
                           lambda _now, e=e, c=c: c.status(e.fault))
