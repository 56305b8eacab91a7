"""OCA certification test cases of functional block A (security) on the link side, Charging Station.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_A_nn_CS"): the steps are
followed as written and every tool validation is asserted; the station is the real one, the OCTT
is played by the DevCsms (conftest.py validates every frame the station sent against the official
JSON schemas when a test ends).

Chosen configured values: <Configured BasicAuthPassword> is conftest.PASSWORD; <NewPassword> is
NEW_PASSWORD (24 characters, letters, digits and symbols of the old passwordString set).
Readings:
- TC_A_09 step 2 "Accepted or RebootRequired": this station answers Accepted and reconnects at
  once with the new password (steps 5-8, only for RebootRequired, do not apply). "Store and log the
  new password": it is stored (persistent); it is never written to a log (A01), so the test checks
  that the station's log does not hold it.
"""
from __future__ import annotations

import logging

import pytest
import trio

from devtools.dev_csms import ACCEPTED_STATUS
from tests.conformance.conftest import PASSWORD, STATION_ID

TIMEOUT = 20
NEW_PASSWORD = "N3w-Passw0rd_for*OCTT+1|"


def set_password(value: str) -> dict:
    return {"setVariableData": [{"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                                 "attributeValue": value}]}


async def test_TC_A_09_CS_update_basic_auth_password_accepted(boot_station, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            csms = cs.csms
            csms.basic_auth = {STATION_ID: NEW_PASSWORD}      # 4: the OCTT validates the NEW password
            after = len(csms.handshakes)
            # 1-2: SetVariables BasicAuthPassword -> Accepted
            res = await cs.call("SetVariables", set_password(NEW_PASSWORD))
            [result] = res["setVariableResult"]
            assert result["attributeStatus"] in ("Accepted", "RebootRequired"), result
            assert result["attributeStatus"] == "Accepted"
            # the old connection is closed cleanly by the station
            # 3-4: the station upgrades again, with Authorization Basic base64(<id>:<NEW password>)
            _, (_, sid, status) = await csms.wait_handshake(STATION_ID, after=after)
            assert (sid, status) == (STATION_ID, ACCEPTED_STATUS)
            await csms.wait_connected(STATION_ID)
            assert any(how.startswith("code 1000") for s, how in csms.disconnects if s == STATION_ID), \
                csms.disconnects
            # online again, no BootNotification (Accepted: no reboot needed)
            res = await cs.call("GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}]})
            assert res["getVariableResult"][0]["attributeValue"] == "1"
    assert NEW_PASSWORD not in caplog.text        # A01: never in a log (wire log included)


async def test_TC_A_10_CS_update_basic_auth_password_rejected(boot_station, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    short = "0123456789abcde"        # 15 characters
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            csms = cs.csms
            csms.basic_auth = {STATION_ID: PASSWORD}          # 4: the OCTT validates the OLD password
            res = await cs.call("SetVariables", set_password(short))
            [result] = res["setVariableResult"]
            assert result["attributeStatus"] == "Rejected"    # step 2
            assert short not in str(result)
            # 3-5: the next connection uses the old password and is accepted (Booted)
            after = len(csms.handshakes)
            await csms.disconnect(STATION_ID)
            _, (_, sid, status) = await csms.wait_handshake(STATION_ID, after=after)
            assert status == ACCEPTED_STATUS
            await csms.wait_connected(STATION_ID)
    assert short not in caplog.text
