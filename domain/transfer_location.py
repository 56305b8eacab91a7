"""The URLs of file transfers the CSMS asks for (UpdateFirmware's firmware.location, GetLog's
log.remoteLocation): their scheme must be one the station's transfers speak, as
OCPPCommCtrlr.FileTransferProtocols says."""
from __future__ import annotations

from domain.device_model import DeviceModel


def unsupported_scheme(dm: DeviceModel, location: str, field: str) -> str | None:
    """Why `location` (the request's `field`) cannot be used, or None. Names only the scheme:
    a location may hold credentials."""
    scheme = location.split("://", 1)[0].upper() if "://" in location else ""
    supported = (dm.get("OCPPCommCtrlr", "FileTransferProtocols") or "").split(",")
    if scheme in supported:
        return None
    return f"{field}: scheme {scheme.lower() or '(none)'!r} is not one of FileTransferProtocols {','.join(supported)}"
