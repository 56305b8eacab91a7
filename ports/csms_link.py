"""Port: the station's link to its CSMS (OCPP-J over a websocket).

The link owns the transport only: connecting, security profile, keep-alive and
reconnecting with back-off. It knows nothing of OCPP messages; frames are text.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything the link needs; built by bootstrap from config + device model."""

    csms_url: str                      # e.g. "ws://127.0.0.1:9000/ocpp" (station id is appended)
    station_id: str
    security_profile: int = 1          # 1: ws + Basic auth, 2: TLS + Basic auth, 3: TLS + client cert
    basic_auth_password: str | None = None   # SecurityCtrlr.BasicAuthPassword
    csms_root_ca: str | None = None    # PEM file that verifies the CSMS server certificate (2, 3)
    client_cert: str | None = None     # PEM chain of the station certificate (3)
    client_key: str | None = None      # PEM private key of the station certificate (3)
    ping_interval: float = 30.0        # OCPPCommCtrlr.WebSocketPingInterval, 0 = off
    retry_backoff_wait_minimum: float = 5.0   # OCPPCommCtrlr.RetryBackOffWaitMinimum
    retry_backoff_random_range: float = 10.0  # OCPPCommCtrlr.RetryBackOffRandomRange
    retry_backoff_repeat_times: int = 5       # OCPPCommCtrlr.RetryBackOffRepeatTimes
    connect_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The websocket is open and the `ocpp2.0.1` subprotocol was agreed."""

    url: str


@dataclass(frozen=True, slots=True)
class FrameIn:
    """One text frame from the CSMS."""

    text: str


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The connection is gone (or an attempt failed); the link keeps retrying."""

    reason: str
    attempt: int = 0                   # consecutive failed attempts so far
    retry_in: float | None = None      # seconds until the next attempt, when known
    security_event: str | None = None  # A04 type when a security check failed (SECURITY_EVENTS)


# A04 security events the link detects (security_events.csv of the Part 2 appendices).
INVALID_CSMS_CERTIFICATE = "InvalidCsmsCertificate"          # server certificate fails validation
INVALID_TLS_VERSION = "InvalidTLSVersion"                    # CSMS offers no TLS 1.2 or above
INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"           # no A00.FR.319 cipher suite in common
FAILED_TO_AUTHENTICATE_AT_CSMS = "FailedToAuthenticateAtCsms"  # HTTP 401 on the upgrade request
INVALID_CHARGING_STATION_CERTIFICATE = "InvalidChargingStationCertificate"  # the CSMS refuses ours
SECURITY_EVENTS = (INVALID_CSMS_CERTIFICATE, INVALID_TLS_VERSION, INVALID_TLS_CIPHER_SUITE,
                   FAILED_TO_AUTHENTICATE_AT_CSMS, INVALID_CHARGING_STATION_CERTIFICATE)


LinkEvent = LinkUp | FrameIn | LinkDown


class LinkClosed(Exception):
    """send() while no connection is open."""


class CsmsLink(Protocol):
    async def run(
        self,
        events: trio.MemorySendChannel[LinkEvent],
        *,
        on_frame: Callable[[str], Awaitable[None]] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect and stay connected until cancelled, reconnecting forever with
        the OCPP back-off. Every state change goes to `events`; every inbound frame
        too, or, with `on_frame`, is awaited by the task that reads the frames, in
        order (no task hop between the socket and the station). An exception of
        `on_frame` is not the network's: run() raises it."""

    async def send(self, frame: str) -> None:
        """Send one text frame; raises LinkClosed when not connected."""

    def update(self, settings: LinkSettings) -> None:
        """New settings (ping interval, back-off, password, ...): effective at
        once for keep-alive and back-off, at the next connection for the rest."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the current connection normally and stop reconnecting."""

    def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again (e.g. after a
        soft reboot or a new network profile)."""
