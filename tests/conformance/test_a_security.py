"""OCA certification test cases of functional block A (security), Charging Station side: the
station certificate's renewal TC_A_11, A_14, A_15, A_23 (A02, F06).

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_A_nn_CS"): the steps are
followed as written and every tool validation is asserted; the station is the real one (its
certificate store on files next to its SQLite database), the OCTT is played by the DevCsms, which
signs the station's CSR with a test CA (tests/pki.py); every frame the station sent is validated
against the official JSON schemas (conftest.py).

Readings:
- Prerequisite "security profile 3": this rig runs the in-memory link under the MockClock, so the
  station connects with profile 1; what the test cases check (the CSR, the answers, the security
  event, the repeats) does not depend on it. After an Accepted ChargingStationCertificate the
  station reconnects (A02.FR.08): the tests wait for that new connection.
- "<Certificate ... signed by the provided CSMS Root certificate>": the CSMS root the test installs
  first with InstallCertificate (the station accepts only a chain to an installed CSMS or
  manufacturer root, A02.FR.06).
- TC_A_14 "<Configured invalid_signingCertificate>": a certificate for the station's key signed by
  a CA the station does not know.
- TC_A_23: "SecurityCtrlr.CertSigningRepeatTimes is 1" contradicts the steps, which expect the
  SignCertificateRequest twice more (steps 6 and 9) after the first (step 3). The station repeats
  at most CertSigningRepeatTimes times (A02.FR.18), so the test configures 2, the number of repeats
  its steps show; <Configured CertSigningWaitMinimum> is WAIT_MINIMUM s. The same CSR is sent each
  time, so the certificate "generated from the received CSR from step 3" matches the station's key.
"""
from __future__ import annotations

import trio

from tests.conformance.conftest import expect_call
from tests.conformance.test_m_certificates import (check_csr, certificate_installed, reconnected,
                                                   renew_charging_station_certificate, valid)
from tests.memory_link import rig_utc_now

TIMEOUT = 30
WAIT_MINIMUM = 30           # s, <Configured CertSigningWaitMinimum>


async def test_TC_A_11_CS_update_charging_station_certificate_by_request_of_csms(boot_station):
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Before (the provided CSMS root)")
            signed = await renew_charging_station_certificate(cs, root, "Step 1 (RenewChargingStationCertificate)")
            # the new certificate is the station's current one, also after a restart
            await cs.restart()
            chain = cs.runtime.certificates.credentials().certificate_chain.read_text()
            assert chain.startswith(signed.pem), "the new certificate is not the station's current one"


async def test_TC_A_14_CS_update_charging_station_certificate_invalid_certificate(boot_station):
    root, unknown_ca = valid("CSMS Root"), valid("a CA the station does not know")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Before (the provided CSMS root)")
            after = cs.mark()
            res = await cs.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
            assert res["status"] == "Accepted", f"Step 2: {res}"
            _, req = await expect_call(cs, "SignCertificate", after=after, step="Step 3")
            csr = check_csr("Step 3", req["csr"])
            invalid = valid(cs.station_id, issuer=unknown_ca, ca=False, public_key=csr.public_key())
            after = cs.mark()
            res = await cs.call("CertificateSigned", {"certificateChain": invalid.pem,
                                                      "certificateType": "ChargingStationCertificate"})
            assert res["status"] == "Rejected", f"Step 6: {res}"
            _, event = await expect_call(cs, "SecurityEventNotification", after=after, step="Step 7")
            assert event["type"] == "InvalidChargingStationCertificate", f"Step 7: {event}"
            assert cs.runtime.certificates.credentials() is None, "the invalid certificate was installed"


async def test_TC_A_15_CS_update_charging_station_certificate_sign_certificate_rejected(boot_station):
    with trio.fail_after(TIMEOUT + WAIT_MINIMUM * 4):
        async with boot_station(device_model={"SecurityCtrlr.CertSigningWaitMinimum": WAIT_MINIMUM,
                                              "SecurityCtrlr.CertSigningRepeatTimes": 2}) as cs:
            cs.csms.handlers["SignCertificate"] = lambda station_id, payload: {"status": "Rejected"}
            after = cs.mark()
            res = await cs.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
            assert res["status"] == "Accepted", f"Step 2: {res}"
            index, req = await expect_call(cs, "SignCertificate", after=after, step="Step 3")
            check_csr("Step 3", req["csr"])
            await cs.wait_answered(index)
            # Rejected: the station does not ask again (no SignCertificate after the wait)
            await trio.sleep(WAIT_MINIMUM * 3)
            assert len(cs.calls("SignCertificate", after)) == 1, cs.calls("SignCertificate", after)


async def test_TC_A_23_CS_certificate_signed_request_timeout(boot_station):
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT + WAIT_MINIMUM * 10):
        async with boot_station(device_model={"SecurityCtrlr.CertSigningWaitMinimum": WAIT_MINIMUM,
                                              "SecurityCtrlr.CertSigningRepeatTimes": 2}) as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Before (the provided CSMS root)")
            after = cs.mark()
            res = await cs.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
            assert res["status"] == "Accepted", f"Step 2: {res}"
            i3, req3 = await expect_call(cs, "SignCertificate", after=after, step="Step 3")
            csr = check_csr("Step 3", req3["csr"])
            await cs.wait_answered(i3)
            t3 = rig_utc_now()
            i6, req6 = await expect_call(cs, "SignCertificate", after=i3 + 1, step="Step 6",
                                         timeout=WAIT_MINIMUM + 5)
            t6 = rig_utc_now()
            check_csr("Step 6", req6["csr"])
            assert (t6 - t3).total_seconds() >= WAIT_MINIMUM - 1, \
                f"Step 5: SignCertificate sent again after {(t6 - t3).total_seconds()} s"
            await cs.wait_answered(i6)
            i9, req9 = await expect_call(cs, "SignCertificate", after=i6 + 1, step="Step 9",
                                         timeout=2 * WAIT_MINIMUM + 5)
            t9 = rig_utc_now()
            check_csr("Step 9", req9["csr"])
            assert (t9 - t6).total_seconds() >= 2 * WAIT_MINIMUM - 1, \
                f"Step 8: SignCertificate sent again after {(t9 - t6).total_seconds()} s, not twice the wait"
            await cs.wait_answered(i9)
            signed = valid(cs.station_id, issuer=root, ca=False, public_key=csr.public_key())
            handshakes = len(cs.csms.handshakes)
            res = await cs.call("CertificateSigned", {"certificateChain": signed.pem,
                                                      "certificateType": "ChargingStationCertificate"})
            assert res["status"] == "Accepted", f"Step 12: {res}"
            await reconnected(cs, handshakes, "after step 12")
            # CertSigningRepeatTimes reached and the certificate came: no more SignCertificate
            await trio.sleep(WAIT_MINIMUM * 5)
            assert len(cs.calls("SignCertificate", after)) == 3, cs.calls("SignCertificate", after)


async def test_a_renewed_certificate_is_kept_once_a_connection_works(boot_station):
    """A02.FR.10: the previous certificate is discarded after the new one connected."""
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root)
            await renew_charging_station_certificate(cs, root, "first")
            second = await renew_charging_station_certificate(cs, root, "second")
            await cs.call("GetInstalledCertificateIds", {})     # a barrier: the station is past link up
            store = cs.runtime.certificates
            while store.has_previous("ChargingStationCertificate"):
                await trio.sleep(0.01)
            assert store.credentials().certificate_chain.read_text().startswith(second.pem)


async def test_a_renewed_certificate_that_cannot_connect_is_reverted_with_a_security_event(boot_station):
    """A02.FR.28/29: the new certificate fails OCPPCommCtrlr.NetworkProfileConnectionAttempts
    (2 here, not the default 3) connection attempts (the CSMS refuses them): the previous one is
    used again, the station connects with it and sends the security event
    DiscardedRenewedClientCertificate (errata 2025-01 A02.FR.29)."""
    attempts = 2
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT * 2):
        async with boot_station(device_model={"OCPPCommCtrlr.NetworkProfileConnectionAttempts": attempts}) as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root)
            first = await renew_charging_station_certificate(cs, root, "first")
            after = cs.mark()
            res = await cs.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
            assert res["status"] == "Accepted"
            _, req = await expect_call(cs, "SignCertificate", after=after, step="second renewal")
            csr = check_csr("second renewal", req["csr"])
            second = valid(cs.station_id, issuer=root, ca=False, public_key=csr.public_key())
            cs.csms.refuse_connections = attempts
            handshakes = len(cs.csms.handshakes)
            after = cs.mark()
            res = await cs.call("CertificateSigned", {"certificateChain": second.pem})
            assert res["status"] == "Accepted", res
            _, event = await expect_call(cs, "SecurityEventNotification", after=after, step="after the revert",
                                         where=lambda p: p["type"] == "DiscardedRenewedClientCertificate",
                                         timeout=TIMEOUT)
            refused = [h for h in cs.csms.handshakes[handshakes:] if h[2] != 101]
            assert len(refused) == attempts, cs.csms.handshakes[handshakes:]
            store = cs.runtime.certificates
            assert store.credentials().certificate_chain.read_text().startswith(first.pem)
            assert not store.has_previous("ChargingStationCertificate")
