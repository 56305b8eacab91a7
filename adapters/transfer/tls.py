"""The TLS side shared by the HTTPS and FTPS adapters (ports.file_transfer): the server is
verified against a given CA file, or the system's trust store; TLS 1.2 at least. The context
is built at the first TLS transfer, not when the station starts (loading the system's trust
store takes a while)."""
from __future__ import annotations

import ssl
from pathlib import Path


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Server verification against `ca_file`, or the system's trust store; TLS 1.2 at least."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class TlsOnFirstUse:
    """A transfer adapter's TLS context (`_tls`), made when a transfer first needs it."""

    def __init__(self, *, ca_file: Path | None = None) -> None:
        self._ca_file = ca_file
        self._context: ssl.SSLContext | None = None

    @property
    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = tls_context(self._ca_file)
        return self._context
