"""B09/B10, A05: network connection profiles; A04: the security events of the link.

- SetNetworkProfile (B09): the NetworkConnectionProfile is checked, then stored durably in its
  configuration slot (B09.FR.01) and used from the next connection that picks that slot. Refused
  (Rejected, statusInfo naming the field): a slot that is not one of
  OCPPCommCtrlr.NetworkConfigurationPriority's valuesList, slot 0 (the installation file's
  connection: csms.url, csms.security_profile; changed in the TOML only), a securityProfile lower
  than the active SecurityCtrlr.SecurityProfile (B09.FR.04, TC_A_22: no downgrade, this station
  has no AllowSecurityProfileDowngrade), an ocppVersion other than OCPP20, the SOAP transport, a
  URL that is not ws:// (profile 1) or wss:// (profiles 2, 3) with a host, a VPN (this station
  cannot set one up). The APN and ocppInterface are kept but not acted on (one network interface).
- NetworkConfigurationPriority (B10): SetVariables refuses a slot without a profile, (A05.FR.10)
  a slot whose securityProfile is lower than the active one, a slot of profile 2 or 3 while no
  valid CSMSRootCertificate is installed (A05.FR.02, TC_A_20) and one of profile 3 without a valid
  ChargingStationCertificate (A05.FR.03, TC_A_21): what the certificate store holds comes in by
  `credentials_known` (the runtime tells it at start and whenever the link's settings are built). The order is used from the next
  boot (RebootRequired), TC_A_19 / TC_B_45.
- Connecting (B10.FR.03/04/07/09): a boot starts with the first slot of the priority list; after
  NetworkProfileConnectionAttempts failed attempts with a slot, the next slot of the list, after
  the last the first again: the station never stops trying. Slots whose securityProfile is lower
  than the active SecurityCtrlr.SecurityProfile are skipped (no fallback to a lower profile after
  an upgrade, A05), so are slots whose certificates are not installed while another slot can be
  tried (never by falling back to a lower profile). A profile stored into the slot in use applies
  from the next connection.
- ActiveNetworkProfile (2025-01 errata) and SecurityCtrlr.SecurityProfile are the slot and the
  security profile of the connection that is up (A05.FR.06: the new profile is reported);
  OCPPCommCtrlr.MessageTimeout is the slot's messageTimeout.
- A04: a failed connection attempt whose cause is a security check (the link names it:
  InvalidCsmsCertificate, InvalidTLSVersion, InvalidTLSCipherSuite, FailedToAuthenticateAtCsms,
  InvalidChargingStationCertificate) is a security event, raised once per kind until the next
  successful connection: the station retries forever, and one event per retry would flood the
  queue and the security log with the same fact.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.device_model import VariableRef
from domain.effects import Reconfigure, StoreRecords
from domain.stored_state import StoredState

TABLE = "network_profiles"             # configuration slot -> NetworkConnectionProfile (JSON)
INSTALLATION_SLOT = 0                  # the installation file's connection
PRIORITY = VariableRef("OCPPCommCtrlr", "NetworkConfigurationPriority")
ACTIVE = VariableRef("OCPPCommCtrlr", "ActiveNetworkProfile")
ATTEMPTS = VariableRef("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
SECURITY_PROFILE = VariableRef("SecurityCtrlr", "SecurityProfile")
MESSAGE_TIMEOUT = VariableRef("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default")

_S = m.SetNetworkProfileStatus
_decode = msgspec.json.Decoder(m.NetworkConnectionProfile).decode


@dataclass(frozen=True, slots=True)
class NetworkConnection:
    """The connection of one configuration slot, for the link (None: the installation file's)."""

    slot: int
    url: str
    security_profile: int
    message_timeout: int


def _url_problem(url: str, security_profile: int) -> str | None:
    """Why `url` cannot be used with `security_profile` (A00: ws:// for 1, wss:// for 2 and 3)."""
    try:
        parts = urlsplit(url)
        parts.port                      # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        return f"connectionData.ocppCsmsUrl: not a valid URL ({exc})"
    want = "ws" if security_profile == 1 else "wss"
    if parts.scheme.lower() != want:
        return f"connectionData.ocppCsmsUrl: security profile {security_profile} needs a {want}:// URL"
    if not parts.hostname:
        return "connectionData.ocppCsmsUrl: no host"
    return None


class NetworkProfiles(Block):
    name = "network"
    tables = (TABLE,)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.profiles: dict[int, m.NetworkConnectionProfile] = {}
        for slot, raw in stored.table(TABLE).items():
            try:
                self.profiles[int(slot)] = _decode(raw)
            except (ValueError, msgspec.DecodeError):
                ctx.log("warning", f"stored network profile of slot {slot} unreadable: ignored")
        self.calls = {"SetNetworkProfile": self._set_network_profile}
        self.has_csms_root = True           # a valid CSMSRootCertificate is installed (credentials_known)
        self.has_station_certificate = True  # a valid ChargingStationCertificate is installed
        self._order = self._usable(self._priority())
        self._index = 0                 # in _order: the slot the link tries now
        self._failures = 0              # failed attempts with that slot
        self._reported: set[str] = set()    # security events of this failure streak
        self._timeout_before: str | None = None  # MessageTimeout before a slot's replaced it
        ctx.dm.veto(PRIORITY, self._priority_problem)
        self._apply_message_timeout()

    # --- the slots --------------------------------------------------------------------------
    @property
    def slots(self) -> tuple[int, ...]:
        """The configuration slots this station has (NetworkConfigurationPriority's valuesList)."""
        d = self.ctx.dm.definition(PRIORITY)
        return tuple(int(v) for v in d.values_list) if d is not None else (INSTALLATION_SLOT,)

    def _installation_profile(self) -> int:
        d = self.ctx.dm.definition(SECURITY_PROFILE)
        return int(d.default) if d is not None and d.default else 1

    def security_profile_of(self, slot: int) -> int | None:
        if slot == INSTALLATION_SLOT:
            return self._installation_profile()
        p = self.profiles.get(slot)
        return None if p is None else p.security_profile

    def _active_profile(self) -> int:
        return self.ctx.dm.get_int("SecurityCtrlr", "SecurityProfile") or self._installation_profile()

    def _priority(self) -> list[int]:
        raw = self.ctx.dm.value(PRIORITY) or str(INSTALLATION_SLOT)
        return [int(s) for s in raw.split(",") if s]

    def _usable(self, order: list[int]) -> list[int]:
        """The slots to try, in order: those with a profile, none below the active security
        profile (A05), of these the ones whose certificates are installed (A05.FR.02/03), else all
        of them (a missing certificate never makes the station fall back to a lower profile);
        the installation slot only when no slot is left at all."""
        floor = self._active_profile()
        candidates = [s for s in order if (p := self.security_profile_of(s)) is not None and p >= floor]
        ready = [s for s in candidates
                 if s == INSTALLATION_SLOT or self._certificates_problem(s, self.security_profile_of(s)) is None]
        return ready or candidates or [INSTALLATION_SLOT]

    def _certificates_problem(self, slot: int, profile: int) -> str | None:
        if profile >= 2 and not self.has_csms_root:
            return f"slot {slot} has security profile {profile} but no valid CSMSRootCertificate is installed"
        if profile == 3 and not self.has_station_certificate:
            return f"slot {slot} has security profile 3 but no valid ChargingStationCertificate is installed"
        return None

    @property
    def slot(self) -> int:
        """The configuration slot the link tries (or uses) now."""
        return self._order[self._index]

    def connection(self) -> NetworkConnection | None:
        """What the link connects with now; None: the installation file's connection (slot 0)."""
        slot = self.slot
        p = self.profiles.get(slot)
        if slot == INSTALLATION_SLOT or p is None:
            return None
        return NetworkConnection(slot, p.ocpp_csms_url, p.security_profile, p.message_timeout)

    # --- B09 SetNetworkProfile ----------------------------------------------------------------
    def _set_network_profile(self, req: m.SetNetworkProfileRequest, now: float, size: int):
        slot, data = req.configuration_slot, req.connection_data
        if (why := self._profile_problem(slot, data)) is not None:
            self.ctx.log("info", f"SetNetworkProfile slot {slot} rejected: {why}")
            return m.SetNetworkProfileResponse(status=_S.Rejected, status_info=m.StatusInfo(
                reason_code="InvalidValue" if not why.startswith("configurationSlot") else "InvalidNetworkConf",
                additional_info=why[:512]))
        self.profiles[slot] = data
        self.ctx.emit(StoreRecords(TABLE, upserts={str(slot): msgspec.json.encode(data).decode()}))
        if slot == self.slot:           # the slot in use: its new settings from the next connection on
            self._apply_message_timeout()
            self.ctx.emit(Reconfigure())
        self.ctx.log("info", f"network profile stored in slot {slot} ({data.ocpp_csms_url}, "
                             f"security profile {data.security_profile})")
        return m.SetNetworkProfileResponse(status=_S.Accepted)

    def _profile_problem(self, slot: int, data: m.NetworkConnectionProfile) -> str | None:
        if slot not in self.slots:
            return f"configurationSlot: {slot} is not one of {','.join(map(str, self.slots))}"
        if slot == INSTALLATION_SLOT:
            return f"configurationSlot: {slot} holds the installation file's connection (read-only)"
        if data.ocpp_version != m.OCPPVersion.OCPP20:
            return f"connectionData.ocppVersion: {data.ocpp_version} not supported (OCPP20 only)"
        if data.ocpp_transport != m.OCPPTransport.JSON:
            return f"connectionData.ocppTransport: {data.ocpp_transport} not supported (JSON only)"
        if data.security_profile not in (1, 2, 3):
            return f"connectionData.securityProfile: {data.security_profile} is not 1, 2 or 3"
        active = self._active_profile()
        if data.security_profile < active:    # B09.FR.04 (TC_A_22)
            return (f"connectionData.securityProfile: {data.security_profile} is lower than the active "
                    f"security profile {active}")
        d = self.ctx.dm.definition(MESSAGE_TIMEOUT)
        if (why := d.check(str(data.message_timeout)) if d is not None else None) is not None:
            return f"connectionData.messageTimeout: {data.message_timeout} is {why}"
        if data.vpn is not None:
            return "connectionData.vpn: this station cannot set up a VPN"
        return _url_problem(data.ocpp_csms_url, data.security_profile)

    def credentials_known(self, *, csms_root: bool, station_certificate: bool) -> None:
        """What the certificate store holds that is valid now (A05.FR.02/03); a slot that needs
        what is missing is not tried any more."""
        if (csms_root, station_certificate) == (self.has_csms_root, self.has_station_certificate):
            return
        self.has_csms_root, self.has_station_certificate = csms_root, station_certificate
        current = self.slot
        self._order = self._usable(self._priority())
        self._index = self._order.index(current) if current in self._order else 0
        self._apply_message_timeout()

    def _priority_problem(self, value: str) -> str | None:
        """B10 / A05.FR.02/03/10: every slot of the new NetworkConfigurationPriority has a profile,
        none below the active security profile, each with the certificates its profile needs."""
        active = self._active_profile()
        for s in (int(v) for v in value.split(",") if v):
            profile = self.security_profile_of(s)
            if profile is None:
                return f"slot {s} has no network connection profile"
            if profile < active:
                return f"slot {s} has security profile {profile}, lower than the active {active}"
            if (why := self._certificates_problem(s, profile)) is not None:
                return why
        return None

    # --- B10 connecting, A04 ------------------------------------------------------------------
    def link_up(self, now: float) -> None:
        self._failures = 0
        self._reported.clear()
        ctx, slot = self.ctx, self.slot
        if ctx.dm.value(ACTIVE) != str(slot):
            ctx.write(ACTIVE.component, ACTIVE.variable, str(slot))
        profile = self.security_profile_of(slot)
        if profile is not None and ctx.dm.value(SECURITY_PROFILE) != str(profile):
            ctx.write(SECURITY_PROFILE.component, SECURITY_PROFILE.variable, str(profile))   # A05.FR.06
            ctx.log("info", f"security profile {profile} in use (network profile slot {slot})")

    def link_failed(self, now: float, *, attempt: int, security_event: str | None, reason: str) -> None:
        """A LinkDown: `attempt` > 0 when a connection attempt failed (0: a connection was lost)."""
        if security_event is not None and security_event not in self._reported:
            self._reported.add(security_event)
            self.ctx.security_event(security_event, now, reason)
        if attempt <= 0:
            return
        self._failures += 1
        if self._failures < max(1, self.ctx.dm.get_int(ATTEMPTS.component, ATTEMPTS.variable)):
            return
        self._failures = 0
        before = self.slot
        self._order = self._usable(self._priority())
        at = self._order.index(before) if before in self._order else -1
        self._index = (at + 1) % len(self._order)
        if self.slot != before:
            self.ctx.log("warning", f"network profile slot {before} failed {attempt} times in a row: "
                                    f"trying slot {self.slot}")
            self._apply_message_timeout()
            self.ctx.emit(Reconfigure())

    def _apply_message_timeout(self) -> None:
        """MessageTimeout is the slot's messageTimeout; for slot 0 the one of the installation
        (the TOML's, untouched unless a slot replaced it: then it is put back)."""
        dm = self.ctx.dm
        if dm.definition(MESSAGE_TIMEOUT) is None:
            return
        c = self.connection()
        if c is None:
            if self._timeout_before is not None:
                dm.write(MESSAGE_TIMEOUT, self._timeout_before)
                self._timeout_before = None
            return
        if self._timeout_before is None:
            self._timeout_before = dm.value(MESSAGE_TIMEOUT) or ""
        if dm.value(MESSAGE_TIMEOUT) != str(c.message_timeout):
            dm.write(MESSAGE_TIMEOUT, str(c.message_timeout))
