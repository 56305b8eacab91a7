"""OCA certification test cases TC_N_27..TC_N_33 and TC_N_62 (N09 Get customer information,
N10 Clear customer information), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6: the steps are followed as written and
every tool validation is asserted; the station is the real one, the OCTT is played by the
DevCsms (conftest.py validates every frame the station sent against the official schemas).

Readings and chosen configured values:
- <Configured valid idToken fields>: VALID of the transaction tests (ISO14443 04A2B3C4);
  <Configured customerIdentifier> "customer-42"; requestId 1 (2 for a second request).
- Memory State IdTokenCached and IdTokenLocalAuthList (both implemented: both are set up, in this
  order; the list then holds the idToken and the cache no longer does: C13, what the list
  decides is not the cache's business);
  Charging State "Authorized (local)" then "ParkingBayUnoccupied": the idToken authorizes a
  session the EV never starts (the station has no parking bay sensor that is occupied).
- "All report parts have been received": the NotifyCustomerInformationRequests carry seqNo
  0, 1, ... and the last has tbc false or omitted; every one carries the requestId.
- "data Not empty" is read as: the report names the idToken; "a message indicating that no data
  is found" as one NotifyCustomerInformationRequest with empty data (TC_N_62 step 7's "data
  empty"); "a message indicating that the data is cleared" as one whose data says Cleared.
- TC_N_29 / TC_N_33 ("a state where it cannot process customer information requests"): the
  station can always process a well-formed request, so the state is read as a request it cannot
  process: one naming no customer (no idToken, customerCertificate or customerIdentifier).
- TC_N_63 (customerCertificate) is left out: it needs an ISO 15118 session (Authorized15118).
"""
from __future__ import annotations

import trio

from tests.conformance.conftest import expect_call, id_token_cached
from tests.conformance.test_c_authorization_tx import CACHE_PRE_AUTHORIZE, local_list
from tests.conformance.test_efj_transactions import TIMEOUT, VALID, Session, tx_points

LIST_AND_CACHE = tx_points(**CACHE_PRE_AUTHORIZE, **{"LocalAuthListCtrlr.Enabled": True})
CUSTOMER_ID = "customer-42"


async def customer_information(cs, step: str, request_id: int = 1, **payload) -> tuple[dict, list[dict]]:
    """The OCTT's CustomerInformationRequest and, when Accepted, every NotifyCustomerInformation
    part of its report (checked: seqNo from 0 in order, the requestId, tbc on all but the last)."""
    after = cs.mark()
    res = await cs.call("CustomerInformation", {"requestId": request_id, **payload})
    parts: list[dict] = []
    while res.get("status") == "Accepted":
        index, p = await expect_call(cs, "NotifyCustomerInformation", after=after, step=f"{step} (part {len(parts)})")
        assert p.get("seqNo") == len(parts), f"{step}: part {len(parts)} has seqNo {p.get('seqNo')}: {p}"
        assert p.get("requestId") == request_id, f"{step}: requestId must be {request_id}: {p}"
        parts.append(p)
        after = index + 1
        if not p.get("tbc"):
            break
    return res, parts


def data(parts: list[dict]) -> str:
    return "".join(p["data"] for p in parts)


async def memory_and_charging_state(cs) -> None:
    """IdTokenCached, IdTokenLocalAuthList, then Authorized (local) (ParkingBayUnoccupied: no
    EV comes)."""
    await id_token_cached(cs, VALID)
    await local_list(cs, [(VALID, {"status": "Accepted"})])
    await Session(cs).authorized_local("Before (Charging State Authorized (local))", expect_authorize=False)


async def test_TC_N_27_CS_get_customer_information_accepted_and_data(boot_station):
    """TC_N_27_CS Get Customer Information - Accepted + data."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LIST_AND_CACHE) as cs:
            await memory_and_charging_state(cs)
            res, parts = await customer_information(cs, "Step 3", report=True, clear=False, idToken=VALID)
            assert res.get("status") == "Accepted", f"Step 2: CustomerInformationResponse.status: {res}"
            assert VALID["idToken"] in data(parts), f"Step 3: data must not be empty (name the idToken): {parts}"


async def test_TC_N_28_CS_get_customer_information_accepted_and_no_data(boot_station):
    """TC_N_28_CS Get Customer Information - Accepted + no data (Before: a clear for the idToken)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await customer_information(cs, "Before (clear)", report=False, clear=True, idToken=VALID)
            res, parts = await customer_information(cs, "Step 3", 2, report=True, clear=False, idToken=VALID)
            assert res.get("status") == "Accepted", f"Step 2: CustomerInformationResponse.status: {res}"
            assert len(parts) == 1 and not parts[0].get("tbc"), f"Step 3: tbc must not be true: {parts}"
            assert parts[0]["data"] == "", f"Post scenario: a message saying no data was found: {parts}"


async def test_TC_N_29_CS_get_customer_information_not_accepted(boot_station):
    """TC_N_29_CS Get Customer Information - Not Accepted."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res, parts = await customer_information(cs, "Step 2", report=True, clear=False)
            assert res.get("status") == "Invalid", f"Step 2: CustomerInformationResponse.status must be Invalid: {res}"
            await trio.sleep(0.5)
            assert not cs.calls("NotifyCustomerInformation"), "Step 2: no report after Invalid"


async def test_TC_N_30_CS_clear_customer_information_clear_and_report_and_data(boot_station):
    """TC_N_30_CS Clear Customer Information - Clear and report + data."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LIST_AND_CACHE) as cs:
            await memory_and_charging_state(cs)
            res, parts = await customer_information(cs, "Step 3", report=True, clear=True, idToken=VALID)
            assert res.get("status") == "Accepted", f"Step 2: CustomerInformationResponse.status: {res}"
            assert VALID["idToken"] in data(parts), f"Step 3: data must not be empty: {parts}"
            res, parts = await customer_information(cs, "Step 7", 2, report=True, clear=False, idToken=VALID)
            assert res.get("status") == "Accepted", f"Step 6: CustomerInformationResponse.status: {res}"
            assert parts and not parts[-1].get("tbc"), f"Step 8: tbc must not be true: {parts}"
            assert "Local authorization list" in data(parts), f"Step 7: the Local List is kept (N10): {parts}"


async def test_TC_N_31_CS_clear_customer_information_clear_and_report_no_data(boot_station):
    """TC_N_31_CS Clear Customer Information - Clear and report + no data."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res, parts = await customer_information(cs, "Step 3", report=True, clear=True, idToken=VALID)
            assert res.get("status") == "Accepted", f"Step 2: CustomerInformationResponse.status: {res}"
            assert [p["data"] for p in parts] == [""], f"Post scenario: a message saying no data was found: {parts}"


async def test_TC_N_32_CS_clear_customer_information_clear_and_no_report(boot_station):
    """TC_N_32_CS Clear Customer Information - Clear and no report."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res, parts = await customer_information(cs, "Step 3", report=False, clear=True, idToken=VALID)
            assert res.get("status") == "Accepted", f"Step 2: CustomerInformationResponse.status: {res}"
            assert len(parts) == 1 and parts[0]["data"].startswith("Cleared"), (
                f"Post scenario: one message saying the data is cleared: {parts}")


async def test_TC_N_33_CS_clear_customer_information_invalid(boot_station):
    """TC_N_33_CS Clear Customer Information - Invalid."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res, _ = await customer_information(cs, "Step 2", report=False, clear=True)
            assert res.get("status") == "Invalid", f"Step 2: CustomerInformationResponse.status must be Invalid: {res}"


async def test_TC_N_62_CS_clear_and_report_customer_identifier(boot_station):
    """TC_N_62_CS Clear Customer Information - Clear and report - customerIdentifier. The station
    keeps nothing by customer identifier, so the step 3 report is empty too (the table's "data Not
    empty" presumes the tester stored the identifier, which this station has no place for)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res, parts = await customer_information(cs, "Step 3", report=True, clear=True,
                                                    customerIdentifier=CUSTOMER_ID)
            assert res.get("status") == "Accepted", f"Step 2: CustomerInformationResponse.status: {res}"
            assert parts, f"Step 3: a NotifyCustomerInformationRequest: {parts}"
            res, parts = await customer_information(cs, "Step 7", 2, report=True, clear=False,
                                                    customerIdentifier=CUSTOMER_ID)
            assert res.get("status") == "Accepted", f"Step 6: CustomerInformationResponse.status: {res}"
            assert [p["data"] for p in parts] == [""], f"Step 7: data must be empty: {parts}"
