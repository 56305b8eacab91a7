"""N09/N10 CustomerInformation (domain/customer_information.py), pure: what the station keeps
about an idToken reported in NotifyCustomerInformation pages, the clear (durable, the local list
kept), the Invalid requests; steps as in Part 6 TC_N_27..TC_N_33 and TC_N_62. Every frame is
validated against the official schemas (test_firmware.FwRig)."""
from __future__ import annotations

from domain.authorization.service import CACHE_TABLE
from domain.customer_information import PAGE, _pages
from domain.effects import StoreRecords
from tests.domain.test_firmware import FwRig

CARD = {"idToken": "CARD-0001", "type": "ISO14443"}     # test_operations.CARD[1], start_tx's card


def booted(local_list=True) -> FwRig:
    stored = {("LocalAuthListCtrlr/Enabled", "Actual"): "true"} if local_list else {}
    h = FwRig((1,), stored_dm=stored)
    h.settle(h.boot_accepted(now=0.0), 0.0)
    h.calls.clear()
    return h


def listed(h: FwRig) -> None:
    """The card in the Local Authorization List (version 3)."""
    [reply] = h.call("SendLocalList", {"versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
        {"idToken": CARD, "idTokenInfo": {"status": "Accepted"}}]}, 1.0, msg_id="sl")
    assert reply[2] == {"status": "Accepted"}


def customer_information(h: FwRig, now: float, msg_id="ci", **payload) -> tuple[dict, list[dict]]:
    payload = {"requestId": 11, **payload}
    frames = h.call("CustomerInformation", payload, now, msg_id=msg_id)
    answer = h.reply_to(frames, msg_id)
    calls = h.settle(frames, now)
    return answer, [c[3] for c in calls if c[2] == "NotifyCustomerInformation"]


def test_tc_n_27_report_of_an_id_token_in_the_cache_the_local_list_and_a_transaction():
    h = booted()
    listed(h)
    tx = h.start_tx(1, 3.0)
    answer, pages = customer_information(h, 4.0, report=True, clear=False, idToken=CARD)
    assert answer == {"status": "Accepted"}
    assert len(pages) == 1 and "tbc" not in pages[0]
    p = pages[0]
    assert (p["seqNo"], p["requestId"]) == (0, 11) and p["generatedAt"].startswith("2026-01-01T12:00:04")
    assert "Local authorization list version 3: ISO14443 CARD-0001: status Accepted" in p["data"]
    assert f"transaction {tx} authorized by this idToken" in p["data"]


def test_tc_n_28_report_without_data_is_one_empty_page():
    h = booted()
    answer, pages = customer_information(h, 1.0, report=True, clear=False, idToken={"idToken": "NOBODY",
                                                                                   "type": "ISO14443"})
    assert answer == {"status": "Accepted"} and pages == [
        {"data": "", "seqNo": 0, "generatedAt": pages[0]["generatedAt"], "requestId": 11}]


def test_tc_n_30_clear_and_report_deletes_the_cache_entry_durably_and_keeps_the_local_list():
    h = booted()
    h.start_tx(1, 0.5)                                      # the CSMS accepts the card: it is cached
    h.settle(h.stop_tx_frames(1, 0.8), 0.8)
    assert "iso14443:card-0001" in {k.casefold() for k in _cache(h)}
    token = {"idToken": "CARD-0001", "type": "ISO14443"}
    n = len(h.effects)
    answer, pages = customer_information(h, 1.0, report=True, clear=True, idToken=token)
    assert answer == {"status": "Accepted"} and "Authorization cache: ISO14443 CARD-0001" in pages[0]["data"]
    deleted = [i for i, e in enumerate(h.effects[n:]) if isinstance(e, StoreRecords) and e.table == CACHE_TABLE
               and e.deletes]
    sent = [i for i, e in enumerate(h.effects[n:]) if getattr(e, "frame", "").startswith('[3,"ci"')]
    assert deleted and deleted[0] < sent[0]                 # stored before the answer
    assert not {k.casefold() for k in _cache(h)} & {"iso14443:card-0001"}
    answer, pages = customer_information(h, 2.0, msg_id="ci2", report=True, clear=False, idToken=token)
    assert pages == [{"data": "", "seqNo": 0, "generatedAt": pages[0]["generatedAt"], "requestId": 11}]


def test_clear_keeps_the_local_list_entry():
    h = booted()
    listed(h)
    customer_information(h, 3.0, report=False, clear=True, idToken=CARD)
    _, pages = customer_information(h, 4.0, msg_id="ci2", report=True, clear=False, idToken=CARD)
    assert "Local authorization list" in pages[0]["data"] and "Authorization cache" not in pages[0]["data"]


def test_tc_n_32_clear_without_report_sends_one_page_saying_so():
    h = booted()
    answer, pages = customer_information(h, 1.0, report=False, clear=True, idToken=CARD)
    assert answer == {"status": "Accepted"} and len(pages) == 1 and pages[0]["data"].startswith("Cleared")


def test_tc_n_62_customer_identifier_the_station_keeps_nothing_by_it():
    h = booted()
    answer, pages = customer_information(h, 1.0, report=True, clear=True, customerIdentifier="cust-42")
    assert answer == {"status": "Accepted"} and [p["data"] for p in pages] == [""]
    answer, pages = customer_information(h, 2.0, msg_id="ci2", report=True, clear=False,
                                         customerIdentifier="cust-42")
    assert [p["data"] for p in pages] == [""]


def test_transaction_events_not_yet_delivered_are_reported_and_kept_by_a_clear():
    h = booted()
    tx = h.start_tx(1, 0.5)
    h.run(h.station.link_down(0.7))
    h.stop_tx_frames(1, 0.8)                                  # its Ended waits for the link
    [ended] = h.up(0.9)                                       # ... and is in flight, unanswered
    assert ended[2] == "TransactionEvent" and ended[3]["eventType"] == "Ended"
    frames = h.call("CustomerInformation", {"requestId": 3, "report": True, "clear": True, "idToken": CARD},
                    1.0, msg_id="ci")
    assert h.reply_to(frames, "ci") == {"status": "Accepted"}
    calls = h.settle([ended] + frames, 1.0)
    pages = [c[3] for c in calls if c[2] == "NotifyCustomerInformation"]
    assert "TransactionEvent Ended seqNo" in pages[0]["data"] and tx in pages[0]["data"]
    ended = [c for c in calls if c[2] == "TransactionEvent" and c[3]["eventType"] == "Ended"]
    assert ended and ended[0][3]["idToken"]["idToken"] == "CARD-0001"      # delivered, not cleared


def test_invalid_requests_name_the_fields():
    h = booted()
    cases = [({"report": True, "clear": False}, "MissingParam", "idToken"),
             ({"report": True, "clear": False, "idToken": CARD, "customerIdentifier": "x"}, "InvalidValue",
              "idToken and customerIdentifier"),
             ({"report": False, "clear": False, "idToken": CARD}, "InvalidValue", "report, clear")]
    for n, (payload, reason, field) in enumerate(cases):
        answer, pages = customer_information(h, 1.0 + n, msg_id=f"ci{n}", **payload)
        assert answer["status"] == "Invalid" and answer["statusInfo"]["reasonCode"] == reason
        assert field in answer["statusInfo"]["additionalInfo"] and pages == []


def test_while_storage_cannot_be_written_a_clear_is_rejected_and_a_report_works():
    h = booted()
    h.settle(h.run(h.station.storage_failed(1.0, "disk full")), 1.0)
    answer, pages = customer_information(h, 2.0, report=True, clear=True, idToken=CARD)
    assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "OutOfStorage" and pages == []
    answer, pages = customer_information(h, 3.0, msg_id="ci2", report=True, clear=False, idToken=CARD)
    assert answer == {"status": "Accepted"} and len(pages) == 1


def test_pages_cut_at_line_ends_within_the_limit():
    lines = [f"line {i}: " + "x" * 100 for i in range(12)] + ["y" * 1100]
    pages = _pages("\n".join(lines))
    assert all(len(p) <= PAGE for p in pages) and "\n".join(pages).replace("\n", "") == "".join(lines)
    assert pages[0].split("\n")[0] == lines[0] and len(pages) == 6
    assert _pages("") == [""]


def _cache(h: FwRig) -> dict:
    return h.disk.tables.get(CACHE_TABLE, {})
