"""Block N01 GetLog as a pure state machine (domain/diagnostics/): the LogStatusNotification
steps with their requestId, retries per retryInterval, a second GetLog cancelling the first,
bad requests, the durable state after a restart and TriggerMessage. Time injected as `now`,
every frame validated against the official schemas; the steps follow Part 6 TC_N_25, TC_N_26,
TC_N_35, TC_N_36 (TC_F_15/16 for TriggerMessage)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain.diagnostics.jobs import CancelLogUpload, UploadLog
from domain.diagnostics.upload import LOG_UPLOAD_KEY
from domain.effects import Remember, StoreRecords
from domain.hardware_events import JobFinished
from tests.domain.test_firmware import Disk, FwRig
from tests.domain.test_operations import iso
from tests.domain.test_station import T0

FTP = "ftp://user:secret@logs.example.com/upload/"


class LogRig(FwRig):
    """test_firmware.FwRig on a station that carries out log uploads."""

    def __init__(self, *, disk=None, now=0.0, log_uploads=True):
        super().__init__((1,), disk=disk, now=now, log_uploads=log_uploads)

    def get_log(self, now, request_id=5, *, log_type="DiagnosticsLog", location=FTP, msg_id="gl", **kw):
        log: dict = {"remoteLocation": location}
        for key in ("oldestTimestamp", "latestTimestamp"):
            if key in kw:
                log[key] = iso(kw.pop(key))
        payload = {"requestId": request_id, "logType": log_type, "log": log, **kw}
        frames = self.call("GetLog", payload, now, msg_id=msg_id)
        return self.reply_to(frames, msg_id), frames

    def uploads(self) -> list[UploadLog]:
        return [e for e in self.effects if isinstance(e, UploadLog)]

    def done(self, job, ok, now, outcome="", detail=""):
        self.settle(self.run(self.station.hardware_event(JobFinished(job, ok, detail, outcome), now)), now)

    def log_statuses(self) -> list[tuple[str, int | None]]:
        return [(c[3]["status"], c[3].get("requestId")) for c in self.calls if c[2] == "LogStatusNotification"]


def booted(**kw) -> LogRig:
    h = LogRig(**kw)
    now = kw.get("now", 0.0)
    h.settle(h.boot_accepted(now=now, current_time=T0 + timedelta(seconds=now)), now)
    h.calls.clear()
    return h


def test_tc_n_25_diagnostics_log_uploaded():
    h = booted()
    answer, frames = h.get_log(1.0, oldestTimestamp=T0 - timedelta(days=1), latestTimestamp=T0)
    assert answer["status"] == "Accepted" and answer["filename"] == "diagnostics-20260101T120001Z-5.log"
    store = next(i for i, e in enumerate(h.effects) if isinstance(e, StoreRecords) and LOG_UPLOAD_KEY in e.kv)
    reply = next(i for i, f in enumerate(h.effects) if getattr(f, "frame", "").startswith('[3,"gl"'))
    assert store < reply                                        # stored before the answer
    h.settle(frames, 1.0)
    [job] = h.uploads()
    assert (job.request_id, job.log_type, job.remote_location, job.filename, job.oldest, job.latest, job.attempt) == (
        5, "DiagnosticsLog", FTP, answer["filename"], T0 - timedelta(days=1), T0, 1)
    assert "secret" not in repr(job)                            # credentials never in a log line
    h.done(job, True, 2.0)
    assert h.log_statuses() == [("Uploading", 5), ("Uploaded", 5)]


def test_tc_n_35_security_log_uploaded():
    h = booted()
    answer, frames = h.get_log(1.0, log_type="SecurityLog", request_id=9)
    assert answer["filename"].startswith("security-")
    h.settle(frames, 1.0)
    [job] = h.uploads()
    assert job.lines[0].startswith("# evse-stack security log") and "1 entries" in job.lines[0]
    assert job.lines[1:] == ("2026-01-01T12:00:00.000Z StartupOfTheDevice boot reason PowerUp",)
    assert "lines" not in repr(job)
    h.done(job, True, 2.0)
    assert h.log_statuses() == [("Uploading", 9), ("Uploaded", 9)]


def test_security_log_upload_carries_the_entries_between_oldest_and_latest_timestamp():
    """The job carries the security log's entries inside [oldestTimestamp, latestTimestamp] as they
    are at each attempt, one line each (a techInfo's line breaks become spaces)."""
    h = booted()
    for second, kind, info in ((5, "SettingSystemTime", "a\nb"), (7, "ResetOrReboot", None),
                               (9, "FirmwareUpdated", "late")):
        h.station.ctx.security_event(kind, float(second), info)
    _, frames = h.get_log(10.0, log_type="SecurityLog", request_id=3, retries=1, retryInterval=5,
                          oldestTimestamp=T0 + timedelta(seconds=5), latestTimestamp=T0 + timedelta(seconds=7))
    h.settle(frames, 10.0)
    job = h.uploads()[-1]
    assert job.lines[1:] == ("2026-01-01T12:00:05.000Z SettingSystemTime a b",
                             "2026-01-01T12:00:07.000Z ResetOrReboot"), job.lines
    assert "2 entries, 2026-01-01T12:00:05.000Z .. 2026-01-01T12:00:07.000Z" in job.lines[0]
    h.done(job, False, 11.0)
    h.settle(h.tick(16.0), 16.0)
    assert h.uploads()[-1].attempt == 2 and h.uploads()[-1].lines == job.lines
    _, frames = h.get_log(20.0, request_id=4, msg_id="gl2")
    h.settle(frames, 20.0)
    assert h.uploads()[-1].lines is None                    # DiagnosticsLog: the runtime's records


def test_tc_n_26_each_failed_attempt_is_reported_and_retried_after_retry_interval():
    h = booted()
    answer, frames = h.get_log(1.0, retries=3, retryInterval=20)
    h.settle(frames, 1.0)
    t = 1.0
    for attempt in range(1, 5):
        job = h.uploads()[-1]
        assert job.attempt == attempt and len(h.uploads()) == attempt
        h.done(job, False, t + 0.5, outcome="PermissionDenied" if attempt == 2 else "", detail="530 Login incorrect")
        if attempt < 4:
            assert h.station.diagnostics.next_deadline() == pytest.approx(t + 20.5)
            h.settle(h.tick(t + 20.4), t + 20.4)
            assert len(h.uploads()) == attempt
            t += 20.5
            h.settle(h.tick(t), t)
    assert h.log_statuses() == [("Uploading", 5), ("UploadFailure", 5), ("PermissionDenied", 5),
                                ("UploadFailure", 5), ("UploadFailure", 5)]
    assert h.station.diagnostics.next_deadline() is None
    assert not any("secret" in getattr(e, "text", "") for e in h.effects)


def test_tc_n_36_a_second_get_log_cancels_the_first():
    h = booted()
    _, frames = h.get_log(1.0, request_id=1)
    h.settle(frames, 1.0)
    first = h.uploads()[-1]
    answer, frames = h.get_log(2.0, request_id=2, msg_id="gl2")
    assert answer["status"] == "AcceptedCanceled" and answer["filename"].endswith("-2.log")
    assert CancelLogUpload(1) in h.effects
    h.settle(frames, 2.0)
    h.done(first, True, 3.0)                                    # the canceled one's outcome: ignored
    h.done(h.uploads()[-1], True, 4.0)
    assert h.log_statuses() == [("Uploading", 1), ("AcceptedCanceled", 1), ("Uploading", 2), ("Uploaded", 2)]


def test_a_get_log_after_the_last_one_ended_is_accepted():
    h = booted()
    _, frames = h.get_log(1.0, request_id=1)
    h.settle(frames, 1.0)
    h.done(h.uploads()[-1], True, 2.0)
    answer, _ = h.get_log(3.0, request_id=1, msg_id="gl2")
    assert answer["status"] == "Accepted" and CancelLogUpload(1) not in h.effects


@pytest.mark.parametrize("kw, reason, field", [
    ({"retries": -1}, "ValueOutOfRange", "retries"),
    ({"retryInterval": -1}, "ValueOutOfRange", "retryInterval"),
    ({"location": "scp://logs.example.com/x"}, "InvalidURL", "log.remoteLocation"),
    ({"oldestTimestamp": T0, "latestTimestamp": T0 - timedelta(hours=1)}, "InvalidValue", "log.oldestTimestamp"),
])
def test_bad_requests_are_rejected_naming_the_field_and_change_nothing(kw, reason, field):
    h = booted()
    n = len(h.effects)
    answer, frames = h.get_log(1.0, **kw)
    assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == reason
    assert field in answer["statusInfo"]["additionalInfo"] and "filename" not in answer
    assert not [e for e in h.effects[n:] if isinstance(e, (Remember, StoreRecords, UploadLog))]
    assert [f for f in frames if f[0] == 2] == []


def test_the_request_id_of_the_upload_in_progress_is_a_duplicate():
    h = booted()
    h.settle(h.get_log(1.0, request_id=4)[1], 1.0)
    answer, _ = h.get_log(2.0, request_id=4, msg_id="gl2")
    assert answer["statusInfo"]["reasonCode"] == "DuplicateRequestId" and len(h.uploads()) == 1


def test_without_log_uploads_get_log_is_not_supported():
    h = booted(log_uploads=False)
    frames = h.call("GetLog", {"requestId": 1, "logType": "DiagnosticsLog", "log": {"remoteLocation": FTP}}, 1.0, "gl")
    assert frames[0][0] == 4 and frames[0][2] == "NotSupported" and h.uploads() == []


def test_a_restart_makes_the_interrupted_attempt_again_and_keeps_a_retry_waiting():
    h = booted()
    h.settle(h.get_log(1.0, retries=1, retryInterval=100)[1], 1.0)
    h2 = LogRig(disk=h.disk, now=10.0)
    assert [(j.request_id, j.attempt) for j in h2.uploads()] == [(5, 1)]
    h2.done(h2.uploads()[-1], False, 11.0)
    h3 = LogRig(disk=h2.disk, now=20.0)
    assert h3.uploads() == [] and h3.station.diagnostics.next_deadline() == pytest.approx(111.0)
    h3.run(h3.station.tick(111.0))
    assert [(j.request_id, j.attempt) for j in h3.uploads()] == [(5, 2)]
    assert json.loads(h3.disk.values[LOG_UPLOAD_KEY])["attempt"] == 2


def test_trigger_log_status_notification_idle_then_uploading_then_idle():
    h = booted()
    frames = h.call("TriggerMessage", {"requestedMessage": "LogStatusNotification"}, 1.0, "t1")
    assert frames[0] == [3, "t1", {"status": "Accepted"}]
    assert frames[1][2:] == ["LogStatusNotification", {"status": "Idle"}]                   # TC_F_15
    h.settle(frames, 1.0)
    h.settle(h.get_log(2.0, request_id=6)[1], 2.0)
    frames = h.call("TriggerMessage", {"requestedMessage": "LogStatusNotification"}, 3.0, "t2")
    assert frames[1][2:] == ["LogStatusNotification", {"status": "Uploading", "requestId": 6}]  # TC_F_16
    h.settle(frames, 3.0)
    h.done(h.uploads()[-1], True, 4.0)
    frames = h.call("TriggerMessage", {"requestedMessage": "LogStatusNotification"}, 5.0, "t3")
    assert frames[1][2:] == ["LogStatusNotification", {"status": "Idle"}]


def test_while_storage_cannot_be_written_get_log_is_rejected_out_of_storage():
    h = booted()
    h.run(h.station.storage_failed(1.0, "disk full"))
    answer, _ = h.get_log(2.0)
    assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "OutOfStorage"
    assert h.uploads() == [] and LOG_UPLOAD_KEY not in h.disk.values


def test_a_kill_after_any_effect_ends_with_the_upload_reported():
    """The station is killed after each effect of an upload that fails once and then succeeds,
    and started again from what it stored: the upload always ends reported Uploaded."""
    h = booted()
    start = len(h.effects)
    h.settle(h.get_log(1.0, retries=2, retryInterval=10)[1], 1.0)
    h.done(h.uploads()[-1], False, 2.0)
    h.settle(h.tick(12.0), 12.0)
    h.done(h.uploads()[-1], True, 13.0)
    assert h.log_statuses()[-1] == ("Uploaded", 5)
    effects = h.effects[start:]
    base = h.effects[:start]
    for k in range(len(effects) + 1):
        disk = Disk()
        for e in base + effects[:k]:
            disk.apply(e)
        sent = [json.loads(e.frame) for e in effects[:k] if hasattr(e, "frame")]
        again = LogRig(disk=disk, now=100.0)
        again.settle(again.boot_accepted(now=100.0, current_time=T0 + timedelta(seconds=100)), 100.0)
        upload = again.station.diagnostics
        for _ in range(5 if upload.upload is not None else 0):  # every attempt now succeeds
            if upload.next_deadline() is not None:
                again.settle(again.tick(200.0), 200.0)
            pending = [j for j in again.uploads() if j.attempt == upload.upload.attempt]
            if upload.upload.status == "Uploading" and pending:
                again.done(pending[-1], True, 201.0)
        where = f"killed after effect {k}"
        if LOG_UPLOAD_KEY not in disk.values:
            assert again.uploads() == [], where
            continue
        final = [c[3]["status"] for c in sent + again.calls if c[0] == 2 and c[2] == "LogStatusNotification"]
        assert final and final[-1] == "Uploaded", f"{final}: {where}"
