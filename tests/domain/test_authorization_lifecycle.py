"""An authorization belongs to the EVSE state it was given or asked for (PICS C-06.2, errata
2.12): what ends that state (the EV unplugged, a fault, Unavailable, a reset, a newer card)
ends the authorization, including one whose AuthorizeResponse is still outstanding; the late
answer then only updates the cache (C10). And an unplug clears everything that belonged to
the EV (its request for energy). Pure: the CSMS is played by hand."""
from __future__ import annotations

import pytest

from domain.hardware_events import (
    CablePlugged,
    CableUnplugged,
    EnergyRequested,
    FaultCleared,
    FaultRaised,
    TokenPresented,
)
from tests.domain.test_operations import Rig, booted, change_availability
from tests.domain.test_station_authorization import stored

CARD_A, CARD_B = "CARD-A", "CARD-B"


def card(h: Rig, token: str, now: float, evse: int | None = 1) -> list:
    return h.hw(TokenPresented(token, "ISO14443", evse), now)


def authorize_call(frames: list, token: str) -> list:
    [call] = [f for f in frames if f[0] == 2 and f[2] == "Authorize" and f[3]["idToken"]["idToken"] == token]
    return call


def tx_events(calls: list) -> list[dict]:
    return [c[3] for c in calls if c[2] == "TransactionEvent"]


def authorized(h: Rig, evse: int = 1) -> str | None:
    return h.station.snapshot()["evses"][evse]["authorized"]


def accept(h: Rig, call: list, now: float) -> list:
    return h.answer(call, {"idTokenInfo": {"status": "Accepted"}}, now)


def test_late_accepted_answer_after_unplug_authorizes_nobody_and_the_next_ev_does_not_charge():
    h = booted()
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    auth = authorize_call(card(h, CARD_A, 2.0), CARD_A)
    h.settle(h.hw(CableUnplugged(1, 1), 3.0), 3.0)          # the driver leaves before the answer
    after = accept(h, auth, 4.0)
    assert authorized(h) is None, "a late answer authorized an EVSE whose EV had left"
    assert "ISO14443:card-a" in stored(h, "auth_cache"), "the late answer still updates the cache"
    calls = h.settle(after, 4.0) + h.settle(h.hw(CablePlugged(1, 1), 5.0), 5.0)
    assert tx_events(calls) == [], "the next EV started a transaction without a card"
    # the old driver's card still works, for a new question
    assert authorize_call(card(h, CARD_A, 6.0), CARD_A)


def set_variable(h: Rig, component: str, variable: str, value: str, now: float) -> None:
    frames = h.call("SetVariables", {"setVariableData": [{"component": {"name": component},
                                                          "variable": {"name": variable},
                                                          "attributeValue": value}]}, now, msg_id="sv")
    assert h.reply_to(frames, "sv")["setVariableResult"][0]["attributeStatus"] == "Accepted"
    h.tick(now)


def test_late_answer_after_unplug_with_ev_connected_start_point_gives_no_token_to_the_next_session():
    h = booted()
    set_variable(h, "TxCtrlr", "TxStartPoint", "EVConnected", 0.5)
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)                 # a transaction without a token
    auth = authorize_call(card(h, CARD_A, 2.0), CARD_A)
    h.settle(h.hw(CableUnplugged(1, 1), 3.0), 3.0)               # ends it (TxStopPoint EVConnected)
    h.calls.clear()
    calls = h.settle(accept(h, auth, 4.0), 4.0) + h.settle(h.hw(CablePlugged(1, 1), 5.0), 5.0)
    started = [e for e in tx_events(calls) if e["eventType"] == "Started"]
    assert started, "the next plug starts a transaction (TxStartPoint EVConnected)"
    assert all("idToken" not in e for e in tx_events(calls)), f"the next session carries the old card: {calls}"
    assert authorized(h) is None


def test_a_newer_card_replaces_the_question_still_open_for_the_evse():
    h = booted()
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    auth_a = authorize_call(card(h, CARD_A, 2.0), CARD_A)
    assert card(h, CARD_B, 2.2) == []           # queued behind A's question (one CALL at a time)
    frames = accept(h, auth_a, 3.0)
    assert authorized(h) is None, "the older card's late answer took the EVSE from the newer card"
    auth_b = authorize_call(frames, CARD_B)
    h.settle(accept(h, auth_b, 3.5), 3.5)
    assert authorized(h) == CARD_B


@pytest.mark.parametrize("interruption", ["fault", "unavailable", "evse_reset"])
def test_an_evse_that_can_no_longer_take_the_session_ends_the_open_question(interruption):
    h = booted()
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    auth = authorize_call(card(h, CARD_A, 2.0), CARD_A)
    if interruption == "fault":
        h.hw(FaultRaised(1, "GroundFailure", "RCD", "Tripped"), 3.0)
    elif interruption == "unavailable":
        frames = h.call("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}}, 3.0,
                        msg_id="ca")
        assert h.reply_to(frames, "ca")["status"] == "Accepted"
    else:
        frames = h.call("Reset", {"type": "Immediate", "evseId": 1}, 3.0, msg_id="rs")
        assert h.reply_to(frames, "rs")["status"] == "Accepted"
    h.settle(accept(h, auth, 4.0), 4.0)
    assert authorized(h) is None, f"authorized after {interruption}"
    # and it does not come back when the EVSE does
    if interruption == "fault":
        h.settle(h.hw(FaultCleared(1, "GroundFailure"), 5.0), 5.0)
    elif interruption == "unavailable":
        change_availability(h, 5.0, "Operative", evse=1)
    assert authorized(h) is None
    calls = h.settle(h.hw(CableUnplugged(1, 1), 6.0), 6.0) + h.settle(h.hw(CablePlugged(1, 1), 7.0), 7.0)
    assert tx_events(calls) == []


def test_an_authorization_waiting_for_its_ev_ends_when_the_evse_goes_unavailable():
    h = booted()
    h.settle(card(h, CARD_A, 1.0), 1.0)                 # authorized, no cable yet (EVConnectionTimeOut runs)
    assert authorized(h) == CARD_A
    change_availability(h, 2.0, "Inoperative", evse=1)
    assert authorized(h) is None
    change_availability(h, 3.0, "Operative", evse=1)
    calls = h.settle(h.hw(CablePlugged(1, 1), 4.0), 4.0)
    assert tx_events(calls) == [], "an authorization survived the EVSE's Unavailable period"


def test_remote_start_waiting_for_its_authorize_is_dropped_when_the_ev_leaves():
    h = booted()
    set_variable(h, "AuthCtrlr", "AuthorizeRemoteStart", "true", 0.5)
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    frames = h.call("RequestStartTransaction", {"idToken": {"idToken": CARD_A, "type": "ISO14443"},
                                                "remoteStartId": 7, "evseId": 1}, 2.0, msg_id="rst")
    assert h.reply_to(frames, "rst")["status"] == "Accepted"
    auth = authorize_call(frames, CARD_A)
    h.settle(h.hw(CableUnplugged(1, 1), 3.0), 3.0)
    calls = h.settle(accept(h, auth, 4.0), 4.0) + h.settle(h.hw(CablePlugged(1, 1), 5.0), 5.0)
    assert authorized(h) is None and tx_events(calls) == []


def test_a_stop_question_answered_after_its_session_ended_does_not_stop_the_next_one():
    h = booted()
    set_variable(h, "AuthCtrlr", "LocalPreAuthorize", "true", 0.5)
    group = {"idToken": "G1", "type": "Central"}
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    h.settle(h.answer(authorize_call(card(h, CARD_A, 1.5), CARD_A),
                      {"idTokenInfo": {"status": "Accepted", "groupIdToken": group}}, 1.5), 1.5)
    assert h.tx_id(1) is not None
    # card B, of a group the station does not know: it asks the CSMS whether B may stop (C09)
    ask = authorize_call(card(h, CARD_B, 2.0), CARD_B)
    h.hw(CableUnplugged(1, 1), 3.0)                   # that session ends meanwhile
    h.hw(CablePlugged(1, 1), 4.0)
    card(h, CARD_A, 4.5)                              # the next one: A again, from the cache
    second = h.tx_id(1)
    assert second is not None and authorized(h) == CARD_A
    h.settle(h.answer(ask, {"idTokenInfo": {"status": "Accepted", "groupIdToken": group}}, 5.0), 5.0)
    assert authorized(h) == CARD_A and h.tx_id(1) == second, \
        "a stop answer about the previous session ended the next one"


def test_unplug_forgets_that_the_ev_asked_for_energy():
    """Defect: after a session in which the EV charged, a re-plug (state B, 0 W) was reported
    as Charging because the request for energy survived the unplug."""
    h = booted()
    h.start_tx(1, 1.0)
    calls = h.settle(h.hw(EnergyRequested(1, 11000.0), 2.0), 2.0)
    assert [e["transactionInfo"].get("chargingState") for e in tx_events(calls)] == ["Charging"]
    h.settle(h.hw(CableUnplugged(1, 1), 3.0), 3.0)
    calls = h.settle(h.hw(CablePlugged(1, 1), 4.0), 4.0)
    calls += h.settle(card(h, "CARD-0001", 5.0), 5.0)
    states = [e["transactionInfo"].get("chargingState") for e in tx_events(calls)]
    assert states and "Charging" not in states, f"the EV never asked for energy, yet: {states}"
    assert h.station.evses[1].fsm.charging_state != "Charging"


def test_offline_a_token_the_cache_holds_as_unknown_starts_as_an_unknown_token():
    """C15.FR.02 / TC_C_26 with OfflineTxForUnknownIdEnabled: a cache entry Unknown is no verdict
    against the token (README "Offline with a cached Unknown")."""
    h = booted()
    set_variable(h, "AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true", 0.5)
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    auth = authorize_call(card(h, CARD_A, 2.0), CARD_A)
    h.answer(auth, {"idTokenInfo": {"status": "Unknown"}}, 2.1)
    assert authorized(h) is None and "ISO14443:card-a" in stored(h, "auth_cache")
    h.run(h.station.link_down(3.0))
    card(h, CARD_A, 4.0)
    assert authorized(h) == CARD_A
    # a verdict against the token (Blocked) still refuses it offline
    h2 = booted()
    set_variable(h2, "AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true", 0.5)
    h2.settle(h2.hw(CablePlugged(1, 1), 1.0), 1.0)
    h2.answer(authorize_call(card(h2, CARD_B, 2.0), CARD_B), {"idTokenInfo": {"status": "Blocked"}}, 2.1)
    h2.run(h2.station.link_down(3.0))
    card(h2, CARD_B, 4.0)
    assert authorized(h2) is None
