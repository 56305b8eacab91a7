"""DataTransfer (OCPP 2.0.1 P01/P02): vendor-specific messages in both directions.

A deployment registers its vendor extensions (bootstrap/ composes them); the station
answers a DataTransferRequest from the CSMS with the extension of its vendorId:

* no extension for the vendorId           -> status UnknownVendorId (P01.FR.02)
* the extension does not know messageId    -> status UnknownMessageId (P01.FR.03)
* otherwise what the extension answers (Accepted/Rejected, optional data).

A station-initiated DataTransfer (P02) is queued like any other CALL of the station;
its response goes back to the extension of its vendorId (`on_response`).
Extensions are pure: they get the request and return a response, nothing else.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain import messages as m
from domain.block import Block

MessageHandler = Callable[[Any], "m.DataTransferResponse"]


class VendorExtension(Protocol):
    vendor_id: str

    def handle(self, message_id: str | None, data: Any) -> m.DataTransferResponse | None:
        """The answer to one CSMS DataTransfer; None: messageId unknown."""

    def on_response(self, request: m.DataTransferRequest, response: m.DataTransferResponse | None,
                    error: str | None) -> None:
        """The CSMS's answer to a DataTransfer the station sent (or the error it got)."""


@dataclass
class SimpleExtension:
    """An extension made of one handler per messageId; handy for deployments and tests."""

    vendor_id: str
    handlers: Mapping[str, MessageHandler] = field(default_factory=dict)
    responses: list[tuple[m.DataTransferRequest, m.DataTransferResponse | None, str | None]] = \
        field(default_factory=list)

    def handle(self, message_id: str | None, data: Any) -> m.DataTransferResponse | None:
        handler = self.handlers.get(message_id or "")
        return handler(data) if handler is not None else None

    def on_response(self, request, response, error) -> None:
        self.responses.append((request, response, error))


class DataTransferRegistry:
    def __init__(self, extensions: Iterable[VendorExtension] = ()) -> None:
        self._by_vendor: dict[str, VendorExtension] = {}
        for ext in extensions:
            if ext.vendor_id in self._by_vendor:
                raise ValueError(f"two DataTransfer extensions for vendorId {ext.vendor_id!r}")
            self._by_vendor[ext.vendor_id] = ext

    def handle(self, req: m.DataTransferRequest) -> m.DataTransferResponse:
        ext = self._by_vendor.get(req.vendor_id)
        if ext is None:
            return m.DataTransferResponse(status=m.DataTransferStatus.UnknownVendorId)
        response = ext.handle(req.message_id, req.data)
        if response is None:
            return m.DataTransferResponse(status=m.DataTransferStatus.UnknownMessageId)
        return response

    def answered(self, req: m.DataTransferRequest, response: m.DataTransferResponse | None,
                 error: str | None = None) -> None:
        ext = self._by_vendor.get(req.vendor_id)
        if ext is not None:
            ext.on_response(req, response, error)


class DataTransferBlock(Block):
    """Block P: the CSMS's DataTransfer (P01) answered by the vendor's extension; the station's
    own (P02, `send`) queued like any CALL, its answer (or error) back to the extension."""

    name = "data_transfer"

    def __init__(self, ctx, stored, args) -> None:
        super().__init__(ctx, stored, args)
        self.registry = registry = args.data_transfer or DataTransferRegistry()
        self.calls = {"DataTransfer": lambda req, now, size: registry.handle(req)}
        self.answers = {"DataTransfer": self}

    def send(self, vendor_id: str, message_id: str | None, data: Any) -> None:
        self.ctx.outbox.post(m.DataTransferRequest(vendor_id=vendor_id, message_id=message_id, data=data), self)

    def result(self, request, response, now: float) -> None:
        self.registry.answered(request, response)

    def failed(self, request, failure, now: float) -> None:
        self.registry.answered(request, None, failure.text)
