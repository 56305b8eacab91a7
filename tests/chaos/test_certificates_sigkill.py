"""Chaos: the REAL `evse run` process SIGKILLed while it installs a root certificate
(InstallCertificate, M05) and while it installs its renewed certificate (CertificateSigned,
A02/A03), restarted on the same state directory.

One DevCsms (in the test) serves the station process (sim hardware, SQLite file and `certs/` in
tmp_path). First a CSMS root and a first ChargingStationCertificate are installed cleanly. Then
ROUNDS rounds, each: the CSMS sends an InstallCertificate of a new root, or a CertificateSigned
for a CSR the station made, and the process is killed 0..MAX_DELAY ms after the CALL went out
(racing the station's key, chain and pointer writes and its answer); the station is started
again on the same files.

Oracles, after every kill: the station starts, connects and registers again; its store (read by
the test with the adapter while no process runs) holds a current ChargingStationCertificate whose
chain carries its key and is the old or the new one, never none; a root the station answered
Accepted before the kill is installed; what GetInstalledCertificateIds lists after the restart is
what the store holds; at the end no replaced certificate is kept (the restarted station's
connection proved the renewed one, A02.FR.10). Bounded: ROUNDS rounds, TIME_LIMIT for the whole test.
"""
from __future__ import annotations

import os
import random
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.certificate_store_fs import FsCertificateStore
from devtools.dev_csms import DevCsms, StationDisconnected
from tests.chaos.harness import SID, config_text, start_station, wait_booted
from tests.conformance.test_m_certificates import hash_data, same_hash
from tests.pki import Issued, issue

ROUNDS = 6
MAX_DELAY = 0.15            # s after the CALL went out
TIME_LIMIT = 120.0
BOOT_TIMEOUT = 15.0
SEED_ENV = "EVSE_CHAOS_SEED"


def valid(cn: str, *, issuer: Issued | None = None, ca: bool = True, public_key=None) -> Issued:
    now = datetime.now(timezone.utc)
    return issue(cn, issuer=issuer, ca=ca, public_key=public_key, not_before=now - timedelta(days=1),
                 not_after=now + timedelta(days=365))


def current_chain(state_dir: Path) -> x509.Certificate:
    """The station's current certificate, checked to carry its key (no process runs)."""
    creds = FsCertificateStore(state_dir).credentials()
    assert creds is not None, "the station has no ChargingStationCertificate any more"
    leaf = x509.load_pem_x509_certificates(creds.certificate_chain.read_bytes())[0]
    key = serialization.load_pem_private_key(creds.private_key.read_bytes(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert leaf.public_key().public_bytes(serialization.Encoding.DER, spki) == \
        key.public_key().public_bytes(serialization.Encoding.DER, spki), "the current chain is not for the key"
    return leaf


class Rig:
    def __init__(self, tmp_path: Path, csms: DevCsms, rng: random.Random) -> None:
        self.tmp_path, self.csms, self.rng = tmp_path, csms, rng
        self.config = tmp_path / "station.toml"
        self.config.write_text(config_text(csms.url))
        self.log = (tmp_path / "station.log").open("ab")
        self.proc: trio.Process | None = None
        self.root = valid("CSMS Root")

    async def start(self) -> None:
        after = len(self.csms.received)
        self.proc = await start_station(self.config, self.log)
        await wait_booted(self.csms, after, BOOT_TIMEOUT)

    async def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        self.proc = None
        while SID in self.csms.connected:
            await trio.sleep(0.01)

    async def renew(self) -> tuple[str, Issued]:
        """TriggerMessage SignChargingStationCertificate: (the CertificateSigned chain, its leaf)."""
        after = len(self.csms.received)
        assert (await self.csms.call(SID, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}))[
            "status"] == "Accepted"
        await self.csms.wait_for("SignCertificate", station_id=SID, after=after, timeout=10)
        [csr_pem] = [f[3]["csr"] for sid, f in self.csms.received[after:] if f[0] == 2 and f[2] == "SignCertificate"]
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        leaf = valid(SID, issuer=self.root, ca=False, public_key=csr.public_key())
        return leaf.pem, leaf

    async def call_then_kill(self, action: str, payload: dict) -> dict | None:
        """Send the CALL, kill the process 0..MAX_DELAY s later; its answer if it came first."""
        answer: list[dict] = []

        async def call() -> None:
            try:
                answer.append(await self.csms.call(SID, action, payload, timeout=10))
            except StationDisconnected:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await trio.sleep(self.rng.uniform(0, MAX_DELAY))
            await self.kill()
        return answer[0] if answer else None


async def test_sigkill_during_certificate_installation_and_renewal_keeps_the_station_able_to_connect(tmp_path):
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"chaos seed {seed} (rerun: {SEED_ENV}={seed})")
    rng = random.Random(seed)
    csms = DevCsms(heartbeat_interval=60, log=lambda line: None)
    t0 = time.monotonic()
    outcomes: list[str] = []
    try:
        with trio.fail_after(TIME_LIMIT):
            async with trio.open_nursery() as nursery:
                await nursery.start(csms.serve)
                rig = Rig(tmp_path, csms, rng)
                try:
                    await rig.start()
                    res = await csms.call(SID, "InstallCertificate", {"certificateType": "CSMSRootCertificate",
                                                                      "certificate": rig.root.pem})
                    assert res["status"] == "Accepted", res
                    chain, leaf = await rig.renew()
                    assert (await csms.call(SID, "CertificateSigned", {"certificateChain": chain}))["status"] == \
                        "Accepted"
                    await rig.kill()
                    installed = [rig.root]
                    for n in range(ROUNDS):
                        await rig.start()
                        if n % 2 == 0:
                            root = valid(f"Manufacturer Root {n}")
                            res = await rig.call_then_kill("InstallCertificate", {
                                "certificateType": "ManufacturerRootCertificate", "certificate": root.pem})
                            outcomes.append(f"install: {res and res['status']}")
                            if res is not None and res["status"] == "Accepted":
                                installed.append(root)
                        else:
                            before = current_chain(tmp_path) if n > 1 else leaf.cert
                            chain, new = await rig.renew()
                            res = await rig.call_then_kill("CertificateSigned", {"certificateChain": chain})
                            outcomes.append(f"renewal: {res and res['status']}")
                            now = current_chain(tmp_path)
                            assert now in (before, new.cert), "the current certificate is neither the old nor the new"
                            if res is not None and res["status"] == "Accepted":
                                assert now == new.cert, "an Accepted certificate was lost"
                        current_chain(tmp_path)
                        # the station starts again and connects; its listing is the store's
                        await rig.start()
                        listed = await csms.call(SID, "GetInstalledCertificateIds", {})
                        stored = FsCertificateStore(tmp_path).list()
                        hashes = [c["certificateHashData"] for c in listed.get("certificateHashDataChain", ())]
                        roots = [e for e in stored if e.kind in ("CSMSRootCertificate", "ManufacturerRootCertificate")]
                        assert len(hashes) == len(roots), (listed, roots)
                        for cert in installed:
                            assert any(same_hash(h, hash_data(cert)) for h in hashes), "an Accepted root was lost"
                        if n == ROUNDS - 1:         # a renewal a kill left unproven is proven by now
                            while FsCertificateStore(tmp_path).has_previous("ChargingStationCertificate"):
                                await trio.sleep(0.05)
                        await rig.kill()
                finally:
                    if rig.proc is not None:
                        rig.proc.kill()
                    rig.log.close()
                nursery.cancel_scope.cancel()
    except BaseException as exc:
        exc.add_note(f"chaos seed {seed} ({SEED_ENV}={seed}); outcomes {outcomes}; log {tmp_path / 'station.log'}")
        raise
    print(f"{ROUNDS} kills in {time.monotonic() - t0:.1f} s: {outcomes}")
