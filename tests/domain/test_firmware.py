"""Block L01 Secure firmware update as a pure state machine (domain/firmware/): every status in
Part 2 L01's order with its requestId, the jobs and how their outcomes map to statuses, the
install waiting for idle EVSEs, the cancel, the durable state and a restart at every step.
Time is injected as `now`; the CSMS is played by hand and every frame the station sends is
validated against the official schemas (the `ocpp` package). The steps follow Part 6
TC_L_01..TC_L_18 (and TC_F_18/19 for TriggerMessage). Not applicable to this station: TC_L_12/13
(it downloads during a transaction) and TC_L_16 (PICS C-43 No: it never installs during one)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from ocpp import messages as ocpp_messages  # independent schema validation, tests only

from domain.clock import StationClock
from domain.device_model import DeviceModel
from domain.effects import Reboot, Remember, Send, StoreRecords
from domain.firmware.jobs import (
    ActivateFirmware,
    CheckSigningCertificate,
    DiscardFirmware,
    DownloadFirmware,
    InstallFirmware,
    VerifyFirmware,
)
from domain.firmware.block import REBOOT_NOTICE_WAIT
from domain.firmware.update import FIRMWARE_KEY
from domain.hardware_events import JobFinished
from domain.provisioning.boot import NEXT_BOOT_REASON
from domain.station import Station, StationInfo, StoredState
from tests.domain.defs import load_definitions
from tests.domain.test_operations import Rig, iso
from tests.domain.test_station import T0

CERT = "-----BEGIN CERTIFICATE-----\nMIIB...firmware-signing...\n-----END CERTIFICATE-----"
SIG = "c2lnbmF0dXJl"
URL = "https://fw.example.com/evse-2.0.img"
JOB_TYPES = (CheckSigningCertificate, DownloadFirmware, VerifyFirmware, InstallFirmware, ActivateFirmware)
FINAL = {"DownloadFailed", "InvalidSignature", "Installed", "InstallationFailed", "InstallVerificationFailed"}


class Disk:
    """What storage holds: the effects Remember and StoreRecords applied in order."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.tables: dict[str, dict[str, str]] = {}

    def apply(self, effect) -> None:
        if isinstance(effect, Remember):
            if effect.value is None:
                self.values.pop(effect.key, None)
            else:
                self.values[effect.key] = effect.value
        elif isinstance(effect, StoreRecords):
            t = self.tables.setdefault(effect.table, {})
            if effect.clear:
                t.clear()
            for k in effect.deletes:
                t.pop(k, None)
            t.update(effect.upserts)
            for k, v in effect.kv.items():
                if v is None:
                    self.values.pop(k, None)
                else:
                    self.values[k] = v

    def stored(self) -> StoredState:
        return StoredState(records={k: dict(v) for k, v in self.tables.items()}, values=dict(self.values))


class FwRig(Rig):
    """test_operations.Rig on a station that carries out firmware updates, built from `disk`
    (what a previous run stored), its effects stored as they come, its frames schema-checked."""

    def __init__(self, evse_connectors=(1,), *, disk=None, version="1.0", now=0.0, stored_dm=None,
                 firmware_updates=True, log_uploads=False):
        self.ids = 0
        self.tx_ids = 0
        self.disk = disk if disk is not None else Disk()
        self.version = version
        dm = DeviceModel(load_definitions(list(evse_connectors), station_id="CS-1", security_profile=1),
                         stored_dm or {})
        self.station = Station(
            info=StationInfo("ACME", "Model-X", "SN-1", version), evse_connectors=list(evse_connectors),
            device_model=dm, clock=StationClock(now, T0 + timedelta(seconds=now)), new_message_id=self._new_id,
            new_transaction_id=self._new_tx, stored=self.disk.stored(), firmware_updates=firmware_updates,
            log_uploads=log_uploads)
        self.effects: list = []
        self.calls: list[list] = []
        self.csms_calls: dict[str, str] = {}          # message id -> action, to check the answers
        self.run(self.station.start(now))

    def _new_id(self) -> str:
        self.ids += 1
        return f"{id(self) % 10000}-{self.ids}"

    def run(self, effects):
        for e in effects:
            self.disk.apply(e)
            if isinstance(e, Send):
                validate(e.frame, self.csms_calls)
        return super().run(effects)

    def call(self, action, payload, now, msg_id="csms-1"):
        self.csms_calls[msg_id] = action
        return super().call(action, payload, now, msg_id)

    # -- firmware ---------------------------------------------------------------------------------
    def update(self, now, request_id=7, *, msg_id="uf", location=URL, retrieve=None, install=None,
               retries=None, retry_interval=None, cert=CERT, sig=SIG):
        """UpdateFirmware; returns the frames and the certificate check job (None: answered at once)."""
        firmware: dict = {"location": location,
                          "retrieveDateTime": iso(retrieve or T0 - timedelta(hours=2))}
        for key, value in (("installDateTime", install), ("signingCertificate", cert), ("signature", sig)):
            if value is not None:
                firmware[key] = iso(value) if key == "installDateTime" else value
        payload: dict = {"requestId": request_id, "firmware": firmware}
        if retries is not None:
            payload["retries"] = retries
        if retry_interval is not None:
            payload["retryInterval"] = retry_interval
        n = len(self.effects)
        frames = self.call("UpdateFirmware", payload, now, msg_id=msg_id)
        checks = [e for e in self.effects[n:] if isinstance(e, CheckSigningCertificate)]
        assert len(checks) <= 1
        if checks:
            assert checks[0].reply_to == msg_id and checks[0].signing_certificate == cert
            assert [f for f in frames if f[0] == 3] == [], "answered before the certificate was checked"
        return frames, (checks[0] if checks else None)

    def accept(self, now, request_id=7, msg_id="uf", **kw) -> dict:
        """UpdateFirmware with a good certificate: the answer (the CSMS answers what follows)."""
        frames, check = self.update(now, request_id, msg_id=msg_id, **kw)
        frames = self.finish(check, True, now, settle=False)
        answer = self.reply_to(frames, msg_id)
        self.settle(frames, now)
        return answer

    def finish(self, job, ok, now, detail="", *, settle=True):
        frames = self.run(self.station.hardware_event(JobFinished(job, ok, detail), now))
        if settle:
            self.settle(frames, now)
        return frames

    def jobs(self, kind=JOB_TYPES):
        return [e for e in self.effects if isinstance(e, kind)]

    def job(self, kind):
        found = self.jobs(kind)
        assert found, f"no {kind.__name__} job: {self.effects}"
        return found[-1]

    def fw(self) -> list[tuple[str, int | None]]:
        """The FirmwareStatusNotifications sent, in order: (status, requestId)."""
        return [(c[3]["status"], c[3].get("requestId")) for c in self.calls if c[2] == "FirmwareStatusNotification"]

    def security_events(self) -> list[str]:
        return [c[3]["type"] for c in self.calls if c[2] == "SecurityEventNotification"]

    def stored_status(self) -> str | None:
        raw = self.disk.values.get(FIRMWARE_KEY)
        return json.loads(raw)["status"] if raw else None


def validate(frame: str, csms_calls: dict[str, str]) -> None:
    msg = json.loads(frame)
    if msg[0] == 2:
        ocpp_messages._validate_payload(ocpp_messages.Call(msg[1], msg[2], msg[3]), "2.0.1")
    elif msg[0] == 3 and msg[1] in csms_calls:
        result = ocpp_messages.CallResult(msg[1], msg[2])
        result.action = csms_calls[msg[1]]
        ocpp_messages._validate_payload(result, "2.0.1")


def booted(evse_connectors=(1,), **kw) -> FwRig:
    h = FwRig(evse_connectors, **kw)
    h.settle(h.boot_accepted(now=kw.get("now", 0.0), current_time=T0 + timedelta(seconds=kw.get("now", 0.0))),
             kw.get("now", 0.0))
    h.calls.clear()
    return h


def restarted(h: FwRig | Disk, now: float, version: str) -> FwRig:
    """The station after a reboot (or a power loss) from what `h` stored, running `version`."""
    h2 = FwRig((1,), disk=h if isinstance(h, Disk) else h.disk, version=version, now=now)
    h2.settle(h2.boot_accepted(now=now, current_time=T0 + timedelta(seconds=now)), now)
    return h2


def through_signature(h: FwRig, now: float, **kw) -> None:
    assert h.accept(now, **kw) == {"status": "Accepted"}
    h.finish(h.job(DownloadFirmware), True, now + 1)
    h.finish(h.job(VerifyFirmware), True, now + 2)


# =========================================================================== TC_L_01 the whole way

def test_tc_l_01_installation_successful_every_status_in_order_then_installed_after_the_reboot():
    h = booted((1,))
    frames, check = h.update(1.0)
    assert check.at == T0 + timedelta(seconds=1)
    n = len(h.effects)
    frames = h.finish(check, True, 1.5, settle=False)
    # stored before the answer, which comes before the first status
    store = next(i for i, e in enumerate(h.effects[n:]) if isinstance(e, StoreRecords) and FIRMWARE_KEY in e.kv)
    answer = next(i for i, e in enumerate(h.effects[n:]) if isinstance(e, Send) and e.frame.startswith("[3,"))
    assert store < answer
    assert frames[0] == [3, "uf", {"status": "Accepted"}]
    h.settle(frames, 1.5)
    download = h.job(DownloadFirmware)
    assert (download.request_id, download.location, download.attempt) == (7, URL, 1)
    assert URL not in repr(download)                            # a location may hold credentials
    h.finish(download, True, 2.0)
    verify = h.job(VerifyFirmware)
    assert (verify.request_id, verify.signing_certificate, verify.signature) == (7, CERT, SIG)
    h.finish(verify, True, 3.0)
    assert h.job(InstallFirmware) == InstallFirmware(7)
    assert h.status(1) == "Unavailable"                         # no session starts while installing
    assert ("Unavailable" in [s for _, _, s in _statuses(h.calls)])
    frames = h.finish(h.job(InstallFirmware), True, 4.0, settle=False)
    assert h.reboots() == []                                    # InstallRebooting is told first
    h.settle(frames, 4.0)
    assert h.reboots() == [Reboot("FirmwareUpdate")]
    assert h.remembered(NEXT_BOOT_REASON) == ["FirmwareUpdate"]
    assert h.fw() == [("Downloading", 7), ("Downloaded", 7), ("SignatureVerified", 7), ("Installing", 7),
                      ("InstallRebooting", 7)]
    h2 = FwRig((1,), disk=h.disk, version="2.0", now=10.0)
    [boot] = h2.up(10.0)
    assert boot[3]["reason"] == "FirmwareUpdate" and boot[3]["chargingStation"]["firmwareVersion"] == "2.0"
    assert h2.jobs() == []                                      # nothing before the CSMS accepted the boot
    h2.settle(h2.answer(boot, {"currentTime": iso(T0 + timedelta(seconds=10)), "interval": 60,
                               "status": "Accepted"}, 10.0), 10.0)
    assert h2.jobs() == [ActivateFirmware(7)]
    assert h2.status(1) == "Available"
    h2.finish(ActivateFirmware(7), True, 11.0)
    assert h2.fw() == [("Installed", 7)]
    assert h2.security_events()[-1] == "FirmwareUpdated"
    assert DiscardFirmware(7) in h2.effects
    assert h2.stored_status() == "Installed"
    assert h.jobs(InstallFirmware) + h2.jobs(InstallFirmware) == [InstallFirmware(7)]


def _statuses(calls):
    return [(c[3]["evseId"], c[3]["connectorId"], c[3]["connectorStatus"]) for c in calls
            if c[2] == "StatusNotification"]


# =========================================================================== scheduling

def test_tc_l_03_download_scheduled_until_retrieve_date_time():
    h = booted((1,))
    assert h.accept(1.0, retrieve=T0 + timedelta(seconds=100)) == {"status": "Accepted"}
    assert h.fw() == [("DownloadScheduled", 7)] and h.jobs(DownloadFirmware) == []
    assert h.station.firmware.next_deadline() == pytest.approx(100.0)
    h.settle(h.tick(99.0), 99.0)
    assert h.jobs(DownloadFirmware) == []
    h.settle(h.tick(100.0), 100.0)
    assert h.fw() == [("DownloadScheduled", 7), ("Downloading", 7)] and len(h.jobs(DownloadFirmware)) == 1


def test_tc_l_02_install_scheduled_until_install_date_time():
    h = booted((1,))
    through_signature(h, 1.0, install=T0 + timedelta(seconds=500))
    assert h.fw()[-2:] == [("SignatureVerified", 7), ("InstallScheduled", 7)]
    assert h.jobs(InstallFirmware) == [] and h.status(1) == "Available"
    assert h.station.firmware.next_deadline() == pytest.approx(500.0)
    h.settle(h.tick(500.0), 500.0)
    assert h.fw()[-1] == ("Installing", 7) and h.jobs(InstallFirmware) == [InstallFirmware(7)]
    assert h.station.firmware.next_deadline() != pytest.approx(500.0)


# =========================================================================== failures

def test_tc_l_05_invalid_signing_certificate_and_nothing_else_changes():
    h = booted((1,))
    frames, check = h.update(1.0)
    frames = h.finish(check, False, 1.5, "not issued by an installed ManufacturerRootCertificate", settle=False)
    answer = h.reply_to(frames, "uf")
    assert answer["status"] == "InvalidCertificate" and answer["statusInfo"]["reasonCode"] == "InvalidCertificate"
    h.settle(frames, 1.5)
    assert h.security_events() == ["InvalidFirmwareSigningCertificate"]
    assert h.fw() == [] and h.jobs(DownloadFirmware) == [] and FIRMWARE_KEY not in h.disk.values


def test_an_invalid_certificate_leaves_the_update_in_progress_alone():
    h = booted((1,))
    h.accept(1.0, request_id=1)
    frames, check = h.update(2.0, request_id=2, msg_id="uf2")
    frames = h.finish(check, False, 2.5, "expired", settle=False)
    assert h.reply_to(frames, "uf2")["status"] == "InvalidCertificate"
    h.settle(frames, 2.5)
    assert DiscardFirmware(1) not in h.effects
    h.finish(h.job(DownloadFirmware), True, 3.0)
    assert h.fw() == [("Downloading", 1), ("Downloaded", 1)]


def test_tc_l_06_invalid_signature_then_its_security_event():
    h = booted((1,))
    h.accept(1.0)
    h.finish(h.job(DownloadFirmware), True, 2.0)
    h.finish(h.job(VerifyFirmware), False, 3.0, "signature does not match the image")
    assert h.fw() == [("Downloading", 7), ("Downloaded", 7), ("InvalidSignature", 7)]
    assert h.security_events() == ["InvalidFirmwareSignature"]
    order = [c[2] for c in h.calls if c[2] in ("FirmwareStatusNotification", "SecurityEventNotification")]
    assert order[-2:] == ["FirmwareStatusNotification", "SecurityEventNotification"]
    assert h.jobs(InstallFirmware) == [] and DiscardFirmware(7) in h.effects


def test_tc_l_07_download_failed_after_its_retries_each_after_retry_interval():
    h = booted((1,))
    h.accept(1.0, retries=2, retry_interval=60)
    for attempt, at in ((1, 1.0), (2, 61.0), (3, 121.0)):
        job = h.job(DownloadFirmware)
        assert (job.attempt, len(h.jobs(DownloadFirmware))) == (attempt, attempt)
        h.finish(job, False, at, "HTTP 404")
        if attempt < 3:
            assert h.station.firmware.next_deadline() == pytest.approx(at + 60)
            h.settle(h.tick(at + 59), at + 59)
            assert len(h.jobs(DownloadFirmware)) == attempt
            h.settle(h.tick(at + 60), at + 60)
    assert h.fw() == [("Downloading", 7), ("DownloadFailed", 7)]     # retries are not statuses
    assert len(h.jobs(DownloadFirmware)) == 3 and h.stored_status() == "DownloadFailed"


def test_retries_zero_fails_at_the_first_failed_attempt():
    h = booted((1,))
    h.accept(1.0, retries=0)
    h.finish(h.job(DownloadFirmware), False, 2.0, "connection reset")
    assert h.fw() == [("Downloading", 7), ("DownloadFailed", 7)]


def test_installation_failed_makes_the_evses_available_again():
    h = booted((1,))
    through_signature(h, 1.0)
    assert h.status(1) == "Unavailable"
    h.finish(h.job(InstallFirmware), False, 4.0, "bundle not installable")
    assert h.fw()[-2:] == [("Installing", 7), ("InstallationFailed", 7)]
    assert h.status(1) == "Available" and h.reboots() == []


def test_tc_l_08_rolled_back_after_the_reboot_is_install_verification_failed():
    h = booted((1,))
    through_signature(h, 1.0)
    h.finish(h.job(InstallFirmware), True, 4.0)
    assert h.reboots() == [Reboot("FirmwareUpdate")]
    h2 = restarted(h, 10.0, version="1.0")                     # the old firmware again
    h2.finish(h2.job(ActivateFirmware), False, 11.0, "post-boot check failed, rolled back")
    assert h2.fw() == [("InstallVerificationFailed", 7)]
    assert "FirmwareUpdated" not in h2.security_events()


def test_the_reboot_does_not_wait_beyond_its_deadline_for_install_rebooting_to_be_answered():
    h = booted((1,))
    through_signature(h, 1.0)
    frames = h.finish(h.job(InstallFirmware), True, 4.0, settle=False)
    assert [f[3]["status"] for f in frames if f[0] == 2] == ["InstallRebooting"]
    assert h.station.next_deadline() <= 4.0 + REBOOT_NOTICE_WAIT
    h.tick(4.0 + REBOOT_NOTICE_WAIT - 1)
    assert h.reboots() == []
    h.tick(4.0 + REBOOT_NOTICE_WAIT)
    assert h.reboots() == [Reboot("FirmwareUpdate")]


# =========================================================================== cancel

def test_tc_l_10_a_second_update_cancels_the_first():
    h = booted((1,))
    h.accept(1.0, request_id=1)
    first = h.job(DownloadFirmware)
    assert h.accept(2.0, request_id=2, msg_id="uf2") == {"status": "AcceptedCanceled"}
    assert DiscardFirmware(1) in h.effects
    second = h.job(DownloadFirmware)
    assert second.request_id == 2
    h.finish(first, True, 3.0)                                  # the canceled one's outcome: ignored
    assert h.jobs(VerifyFirmware) == []
    h.finish(second, True, 4.0)
    h.finish(h.job(VerifyFirmware), True, 5.0)
    assert h.fw() == [("Downloading", 1), ("Downloading", 2), ("Downloaded", 2), ("SignatureVerified", 2),
                      ("Installing", 2)]


def test_tc_l_11_an_update_that_is_installing_is_not_canceled():
    h = booted((1,))
    through_signature(h, 1.0, request_id=1)
    frames, check = h.update(5.0, request_id=2, msg_id="uf2")
    assert check is None
    answer = h.reply_to(frames, "uf2")
    assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "FwUpdateInProgress"
    assert DiscardFirmware(1) not in h.effects
    h.finish(h.job(InstallFirmware), True, 6.0)
    assert h.fw()[-1] == ("InstallRebooting", 1)


def test_the_update_in_progress_reaching_installing_while_the_certificate_is_checked_is_not_canceled():
    h = booted((1,))
    h.accept(1.0, request_id=1)
    h.finish(h.job(DownloadFirmware), True, 2.0)
    frames, check = h.update(2.5, request_id=2, msg_id="uf2")
    h.finish(h.job(VerifyFirmware), True, 3.0)                  # Installing meanwhile
    frames = h.finish(check, True, 3.5, settle=False)
    assert h.reply_to(frames, "uf2")["status"] == "Rejected"
    assert h.job(InstallFirmware) == InstallFirmware(1) and DiscardFirmware(1) not in h.effects


# =========================================================================== bad requests

@pytest.mark.parametrize("kw, reason, field", [
    ({"cert": None, "sig": None}, "MissingParam", "firmware.signingCertificate"),       # TC_L_18
    ({"sig": None}, "MissingParam", "firmware.signature"),
    ({"retries": -1}, "ValueOutOfRange", "retries"),
    ({"retry_interval": -5}, "ValueOutOfRange", "retryInterval"),
    ({"location": "sftp://fw.example.com/a.img"}, "InvalidURL", "firmware.location"),
    ({"location": "fw.example.com/a.img"}, "InvalidURL", "firmware.location"),
])
def test_bad_requests_are_rejected_naming_the_field_and_change_nothing(kw, reason, field):
    h = booted((1,))
    n = len(h.effects)
    frames, check = h.update(1.0, **kw)
    answer = h.reply_to(frames, "uf")
    assert check is None and answer["status"] == "Rejected"
    assert answer["statusInfo"]["reasonCode"] == reason and field in answer["statusInfo"]["additionalInfo"]
    assert not [e for e in h.effects[n:] if isinstance(e, (Remember, StoreRecords))]
    assert [f for f in frames if f[0] == 2] == []


def test_while_storage_cannot_be_written_update_firmware_is_rejected_out_of_storage():
    h = booted((1,))
    h.run(h.station.storage_failed(1.0, "disk full"))
    frames, check = h.update(2.0)
    answer = h.reply_to(frames, "uf")
    assert check is None and answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "OutOfStorage"
    assert FIRMWARE_KEY not in h.disk.values


def test_the_request_id_of_the_update_in_progress_is_a_duplicate():
    h = booted((1,))
    h.accept(1.0, request_id=3)
    frames, check = h.update(2.0, request_id=3, msg_id="uf2")
    assert check is None and h.reply_to(frames, "uf2")["statusInfo"]["reasonCode"] == "DuplicateRequestId"


def test_without_firmware_jobs_the_station_does_not_support_update_firmware():
    h = FwRig((1,), firmware_updates=False)
    h.settle(h.boot_accepted(now=0.0), 0.0)
    frames = h.call("UpdateFirmware", {"requestId": 1, "firmware": {
        "location": URL, "retrieveDateTime": iso(T0), "signingCertificate": CERT, "signature": SIG}}, 1.0, "uf")
    assert frames[0][0] == 4 and frames[0][2] == "NotSupported" and h.jobs() == []


# =========================================================================== waiting for idle EVSEs

def test_tc_l_15_install_waits_for_the_transaction_and_idle_evses_are_unavailable_meanwhile():
    h = booted((1, 1))
    h.start_tx(1, 1.0)
    through_signature(h, 2.0)
    assert h.fw()[-2:] == [("SignatureVerified", 7), ("InstallScheduled", 7)]
    assert h.jobs(InstallFirmware) == []
    assert h.status(1) == "Occupied" and h.status(2) == "Unavailable"
    calls = h.settle(h.hw(_plug(2), 5.0), 5.0) + h.settle(h.hw(_card(2), 5.0), 5.0)
    assert h.tx_id(2) is None and not [c for c in calls if c[2] == "TransactionEvent"]
    h.settle(h.stop_tx_frames(1, 6.0), 6.0)
    assert h.jobs(InstallFirmware) == [InstallFirmware(7)] and h.fw()[-1] == ("Installing", 7)
    assert h.status(1) == "Unavailable"


def test_tc_l_14_allow_new_sessions_pending_firmware_update_true_lets_idle_evses_start_sessions():
    h = booted((1, 1), stored_dm={("ChargingStation/AllowNewSessionsPendingFirmwareUpdate", "Actual"): "true"})
    h.start_tx(1, 1.0)
    through_signature(h, 2.0)
    assert h.fw()[-1] == ("InstallScheduled", 7) and h.status(2) == "Available"
    h.start_tx(2, 5.0)                                          # allowed meanwhile
    h.settle(h.stop_tx_frames(1, 6.0), 6.0)
    assert h.jobs(InstallFirmware) == []                        # EVSE 2 still charges
    h.settle(h.stop_tx_frames(2, 7.0), 7.0)
    assert h.jobs(InstallFirmware) == [InstallFirmware(7)]
    assert [s for s, _ in h.fw()].count("InstallScheduled") == 1


def _plug(evse):
    from domain.hardware_events import CablePlugged
    return CablePlugged(evse, 1)


def _card(evse):
    from domain.hardware_events import TokenPresented
    from tests.domain.test_operations import CARD
    return TokenPresented(CARD[evse], evse=evse)


# =========================================================================== TriggerMessage

def test_trigger_reports_idle_then_the_current_status_then_idle_again():
    h = booted((1,))
    frames = h.call("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}, 1.0, "t1")
    assert frames[0] == [3, "t1", {"status": "Accepted"}] and frames[1][2:] == [
        "FirmwareStatusNotification", {"status": "Idle"}]                                      # TC_F_18
    h.settle(frames, 1.0)
    h.accept(2.0)
    frames = h.call("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}, 3.0, "t2")
    assert frames[1][2:] == ["FirmwareStatusNotification", {"status": "Downloading", "requestId": 7}]  # TC_F_19
    h.settle(frames, 3.0)
    h.finish(h.job(DownloadFirmware), False, 4.0, "gone")
    h.settle(h.tick(34.0), 34.0)
    h.finish(h.job(DownloadFirmware), False, 35.0, "gone")
    h.settle(h.tick(65.0), 65.0)
    h.finish(h.job(DownloadFirmware), False, 66.0, "gone")
    assert h.fw()[-1] == ("DownloadFailed", 7)
    frames = h.call("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}, 70.0, "t3")
    assert frames[1][2:] == ["FirmwareStatusNotification", {"status": "Idle"}]


# =========================================================================== durability

def test_state_after_a_restart_while_downloading_downloads_again_and_while_downloaded_verifies_again():
    h = booted((1,))
    h.accept(1.0)
    h2 = restarted(h, 5.0, "1.0")
    assert h2.jobs(DownloadFirmware) == [DownloadFirmware(7, URL, 1)]
    h2.finish(h2.job(DownloadFirmware), True, 6.0)
    h3 = restarted(h2, 7.0, "1.0")
    assert h3.jobs() == [VerifyFirmware(7, CERT, SIG)]
    h3.finish(h3.job(VerifyFirmware), True, 8.0)
    assert h3.job(InstallFirmware) == InstallFirmware(7)


def test_a_restart_waiting_for_a_retry_keeps_the_attempt_count_and_the_retry_time():
    h = booted((1,))
    h.accept(1.0, retries=1, retry_interval=100)
    h.finish(h.job(DownloadFirmware), False, 2.0, "timeout")
    h2 = FwRig((1,), disk=h.disk, now=50.0)
    assert h2.jobs() == [] and h2.station.firmware.next_deadline() == pytest.approx(102.0)
    h2.run(h2.station.tick(102.0))
    h2.finish(h2.job(DownloadFirmware), False, 103.0, "timeout")
    assert h2.job(DownloadFirmware).attempt == 2 and h2.stored_status() == "DownloadFailed"


def run_to_the_end(h: FwRig, now: float, world: dict, done: int = 0) -> FwRig:
    """Carry out every job the station asks for (after the first `done`), as a world where
    everything works, answering every CALL; a reboot starts the next run from what was stored.
    Returns the last run."""
    while now < 1000:
        now += 1.0
        jobs = h.jobs()
        if done < len(jobs):
            job = jobs[done]
            done += 1
            ok = True
            if isinstance(job, InstallFirmware):
                world["installs"] += 1
                world["installed"] = True
            elif isinstance(job, ActivateFirmware):
                ok = world["installed"] and world["running"] == "2.0"
            h.finish(job, ok, now)
            continue
        if h.reboots():
            world["running"] = "2.0" if world["installed"] else world["running"]
            h = restarted(h, now, world["running"])
            done = 0
            continue
        return h
    raise AssertionError("the update never ended")


def test_a_kill_at_every_step_never_installs_twice_and_never_loses_the_final_status():
    """The station is killed after each effect of a whole update, before and after its reboot
    (what was carried out before is all that happened, on disk and on the wire), and started
    again from what it stored; the install may or may not have finished when it was killed."""
    world = {"installs": 0, "installed": False, "running": "1.0"}
    h = booted((1,))
    start = len(h.effects)
    h.accept(1.0)
    last = run_to_the_end(h, 1.0, world, done=1)
    assert last is not h and last.fw()[-1] == ("Installed", 7) and world["installs"] == 1
    assert any(isinstance(e, Reboot) for e in h.effects)
    runs = [(h.effects[:start], h.effects[start:]), (h.effects, last.effects)]     # (before, the run)
    seen = set()
    for before, effects in runs:
        for k in range(len(effects) + 1):
            done = before + effects[:k]
            disk = Disk()
            for e in done:
                disk.apply(e)
            installed = any(isinstance(e, InstallFirmware) for e in done)
            at_kill = json.loads(disk.values[FIRMWARE_KEY])["status"] if FIRMWARE_KEY in disk.values else None
            seen.add(at_kill)
            # InstallRebooting (and what follows) is only stored once the install has finished
            for install_finished in ((True,) if at_kill in ("InstallRebooting", "Installed")
                                     else (True, False) if installed else (False,)):
                d = Disk()
                d.values, d.tables = dict(disk.values), {t: dict(r) for t, r in disk.tables.items()}
                # a finished install switched the slot: any boot after it starts the new firmware
                world = {"installs": int(installed), "installed": install_finished,
                         "running": "2.0" if install_finished else "1.0"}
                sent = [json.loads(e.frame) for e in done if isinstance(e, Send)]
                again = restarted(d, 500.0, world["running"])
                end = run_to_the_end(again, 500.0, world)
                where = f"killed after effect {k} of run {runs.index((before, effects)) + 1} " \
                        f"({type(effects[k - 1]).__name__ if k else 'none'}), install finished: {install_finished}"
                assert world["installs"] <= 1, f"installed twice: {where}"
                final = [c[3]["status"] for c in sent + again.calls + end.calls
                         if c[0] == 2 and c[2] == "FirmwareStatusNotification" and c[3]["status"] in FINAL]
                if d.values.get(FIRMWARE_KEY) is None:
                    assert final == [] and end.jobs() == [], where      # the update was never accepted
                    continue
                assert final, f"no final status: {where}"
                # Installing stored and the install not finished, or not even begun: never installed twice
                expected = "InstallationFailed" if at_kill == "Installing" and not install_finished else "Installed"
                assert final[-1] == expected, f"{final}: {where}"
                assert end.stored_status() == expected, where
    assert seen == {None, "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
                    "Installed"}


def test_a_restart_keeps_a_scheduled_download_for_its_time():
    h = booted((1,))
    h.accept(1.0, retrieve=T0 + timedelta(seconds=300))
    h2 = restarted(h, 50.0, "1.0")
    assert h2.jobs() == [] and h2.station.firmware.next_deadline() == pytest.approx(300.0)
    h2.settle(h2.tick(300.0), 300.0)
    assert h2.jobs() == [DownloadFirmware(7, URL, 1)] and h2.fw() == [("Downloading", 7)]


def test_a_restart_while_the_install_waits_for_a_session_installs_once_the_evses_are_idle():
    h = booted((1, 1))
    h.start_tx(1, 1.0)
    through_signature(h, 2.0)
    assert h.fw()[-1] == ("InstallScheduled", 7) and h.status(2) == "Unavailable"
    h2 = FwRig((1, 1), disk=h.disk, now=50.0)                  # a power loss: the session ends
    h2.settle(h2.boot_accepted(now=50.0, current_time=T0 + timedelta(seconds=50)), 50.0)
    assert h2.jobs(InstallFirmware) == [InstallFirmware(7)] and h2.fw()[-1] == ("Installing", 7)
    assert h2.status(1) == "Unavailable" and h2.status(2) == "Unavailable"
