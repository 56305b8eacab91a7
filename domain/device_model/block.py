"""The device model's CALLs (OCPP 2.0.1 B05-B08): SetVariables, GetVariables, GetBaseReport and
GetReport, the reports paged into NotifyReport messages (within DeviceDataCtrlr
ItemsPerMessage[GetReport] and BytesPerMessage[GetReport]) that follow the response and are
also sent while Pending (B02)."""
from __future__ import annotations

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.device_model import reports
from domain.device_model.service import DeviceModelService


class DeviceModelBlock(Block):
    name = "device_model"

    def __init__(self, ctx: Context, stored, args) -> None:
        super().__init__(ctx, stored, args)
        self.service = DeviceModelService(ctx.dm)
        self.calls = {
            "GetVariables": lambda req, now, size: self.service.get_variables(req, now, size),
            "SetVariables": self._set_variables,
            "GetBaseReport": self._get_base_report,
            "GetReport": self._get_report,
        }

    def _set_variables(self, req: m.SetVariablesRequest, now: float, size: int):
        """B05: accepted values are stored before the answer goes out, and reach their users at
        the end of this input (subscriptions)."""
        result = self.service.set_variables(req, size)
        for ref, value, attribute in self.service.take_changes():
            self.ctx.persist(ref, value, attribute)
        return result

    def _get_base_report(self, req: m.GetBaseReportRequest, now: float, size: int):
        selected = reports.select_base(self.ctx.dm, req.report_base, now)
        if selected is None:
            return m.GetBaseReportResponse(status=m.GenericDeviceModelStatus.NotSupported)
        return m.GetBaseReportResponse(status=self._queue_report(req.request_id, selected, now))

    def _get_report(self, req: m.GetReportRequest, now: float, size: int):
        if err := self.service.request_limits("GetReport", len(req.component_variable or ()), size):
            return err
        selected = reports.select_custom(
            self.ctx.dm, req.component_variable, [str(c) for c in req.component_criteria or ()], now)
        return m.GetReportResponse(status=self._queue_report(req.request_id, selected, now))

    def _queue_report(self, request_id: int, selected, now: float) -> m.GenericDeviceModelStatus:
        if not selected:
            return m.GenericDeviceModelStatus.EmptyResultSet
        dm = self.ctx.dm
        pages = reports.paginate(
            request_id, reports.report_entries(dm, selected, now), self.ctx.utc(now),
            items_per_message=dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"),
            bytes_per_message=dm.get_int("DeviceDataCtrlr", "BytesPerMessage", "GetReport"))
        for page in pages:
            self.ctx.outbox.reply(page, resend=True)       # a lost page goes again: the report stays whole
        return m.GenericDeviceModelStatus.Accepted
