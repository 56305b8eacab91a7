"""The station's authorization flow (C01, C10-C12, D01-D02), pure: a token at the reader,
the AuthorizeRequest, the cache, offline decisions, ClearCache and the local list."""
from __future__ import annotations

import json

from domain.effects import StoreRecords
from domain.hardware_events import CablePlugged, TokenPresented
from domain.authorization.service import CACHE_TABLE
from domain.station import StoredState
from tests.domain.test_station import Harness


def booted(**kw) -> Harness:
    h = Harness(**kw)
    frames = h.boot_accepted(now=0.0)
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)
    return h


def present(h: Harness, token: str, now: float, evse=None):
    return h.run(h.station.hardware_event(TokenPresented(token, "ISO14443", evse), now))


def stored(h: Harness, table: str) -> dict:
    out: dict = {}
    for e in h.effects:
        if isinstance(e, StoreRecords) and e.table == table:
            if e.clear:
                out.clear()
            for k in e.deletes:
                out.pop(k, None)
            out.update(e.upserts)
    return out


def test_card_asks_the_csms_then_caches_the_answer_and_uses_it_offline():
    h = booted()
    [auth] = present(h, "AABBCCDD", 1.0)
    assert auth[2:] == ["Authorize", {"idToken": {"idToken": "AABBCCDD", "type": "ISO14443"}}]
    h.answer(auth, {"idTokenInfo": {"status": "Accepted", "personalMessage": {"format": "UTF8", "content": "Hi"}}},
             1.1)
    assert h.station.snapshot()["evses"][1]["authorized"] == "AABBCCDD"
    assert list(stored(h, "auth_cache")) == ["ISO14443:aabbccdd"]
    assert any("Hi" in getattr(e, "text", "") for e in h.effects)
    # the same card again ends that authorization; offline, the cache decides (LocalAuthorizeOffline)
    present(h, "AABBCCDD", 2.0)
    assert h.station.snapshot()["evses"][1]["authorized"] is None
    h.run(h.station.link_down(3.0))
    assert present(h, "aabbccdd", 4.0) == []             # idToken is case-insensitive
    assert h.station.snapshot()["evses"][1]["authorized"] == "aabbccdd"


def test_rejected_by_the_csms_and_unknown_offline():
    h = booted()
    [auth] = present(h, "BAD", 1.0)
    h.answer(auth, {"idTokenInfo": {"status": "Blocked"}}, 1.1)
    assert h.station.snapshot()["evses"][1]["authorized"] is None
    h.run(h.station.link_down(2.0))
    assert present(h, "NEVER-SEEN", 3.0) == []
    assert h.station.snapshot()["evses"][1]["authorized"] is None


def test_authorize_timeout_falls_back_to_the_offline_rules():
    h = booted()
    [auth] = present(h, "AABB", 1.0)
    h.tick(1.0 + 30.0)                                   # MessageTimeout
    assert h.station.snapshot()["evses"][1]["authorized"] is None     # unknown offline: refused


def test_evse_is_chosen_before_authorization_on_a_two_evse_station():
    h = booted(evse_connectors=(1, 1))
    assert present(h, "AABB", 1.0) == []                 # no EVSE selectable yet: nothing sent
    frames = h.run(h.station.hardware_event(CablePlugged(2, 1), 2.0))
    while frames:
        frames = h.answer(frames[-1], {}, 2.0)
    [auth] = present(h, "AABB", 3.0)
    h.answer(auth, {"idTokenInfo": {"status": "Accepted", "evseId": [1]}}, 3.1)
    assert h.station.snapshot()["evses"][2]["authorized"] is None      # valid on EVSE 1 only


def test_clear_cache_and_local_list_messages():
    h = booted(stored={("LocalAuthListCtrlr/Enabled", "Actual"): "true"})
    [auth] = present(h, "AABB", 1.0)
    h.answer(auth, {"idTokenInfo": {"status": "Accepted"}}, 1.1)
    [reply] = h.call("ClearCache", {}, 2.0, msg_id="cc")
    assert reply == [3, "cc", {"status": "Accepted"}] and stored(h, "auth_cache") == {}
    [reply] = h.call("GetLocalListVersion", {}, 3.0, msg_id="v0")
    assert reply == [3, "v0", {"versionNumber": 0}]
    [reply] = h.call("SendLocalList", {"versionNumber": 5, "updateType": "Full", "localAuthorizationList": [
        {"idToken": {"idToken": "LIST-1", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}]},
        4.0, msg_id="sl")
    assert reply == [3, "sl", {"status": "Accepted"}]
    [reply] = h.call("SendLocalList", {"versionNumber": 5, "updateType": "Differential"}, 4.5, msg_id="vm")
    assert reply == [3, "vm", {"status": "VersionMismatch"}]
    assert h.station.dm.get("LocalAuthListCtrlr", "Entries") == "1"
    # the list is durable before the answer: its StoreRecords comes before the Send
    idx_store = next(i for i, e in enumerate(h.effects) if isinstance(e, StoreRecords) and e.table == "local_list")
    idx_send = next(i for i, e in enumerate(h.effects) if getattr(e, "frame", "").startswith('[3,"sl"'))
    assert idx_store < idx_send
    present(h, "AABB", 4.8)                               # AABB ends its own authorization
    h.run(h.station.link_down(5.0))
    assert present(h, "LIST-1", 6.0) == []
    assert h.station.snapshot()["evses"][1]["authorized"] == "LIST-1"


def test_restored_records_are_used():
    h = booted()
    [auth] = present(h, "AABB", 1.0)
    h.answer(auth, {"idTokenInfo": {"status": "Accepted"}}, 1.1)
    cache = stored(h, "auth_cache")
    h2 = Harness(stored={("AuthCtrlr/LocalPreAuthorize", "Actual"): "true"})
    h2.station = type(h.station)(info=h.station.info, evse_connectors=[1], device_model=h2.station.dm,
                                 clock=h.station.clock, stored=StoredState(records={CACHE_TABLE: cache}))
    frames = h2.boot_accepted(now=10.0)
    while frames:
        frames = h2.answer(frames[-1], {}, 10.0)
    assert present(h2, "AABB", 11.0) == []               # LocalPreAuthorize: the cache decides at once
    assert h2.station.snapshot()["evses"][1]["authorized"] == "AABB"
    json.dumps(h2.station.snapshot())


def test_no_charging_before_accepted_unless_tx_before_accepted_enabled():
    h = Harness()
    h.up(0.0)                                            # BootNotification not answered yet
    assert present(h, "AABB", 1.0) == []
    assert h.station.snapshot()["evses"][1]["authorized"] is None
    h2 = Harness(stored={("TxCtrlr/TxBeforeAcceptedEnabled", "Actual"): "true",
                         ("AuthCtrlr/OfflineTxForUnknownIdEnabled", "Actual"): "true"})
    h2.up(0.0)
    present(h2, "AABB", 1.0)                             # not accepted = offline rules: unknown allowed
    assert h2.station.snapshot()["evses"][1]["authorized"] == "AABB"
