"""GetVariables (B06) and SetVariables (B05) over the device model."""
from __future__ import annotations

from domain import messages as m
from domain.device_model.model import DeviceModel, VariableDef, VariableRef

MAX_ATTRIBUTE_VALUE = 2500     # GetVariableResult.attributeValue string[2500]
MAX_INFO = 512                 # StatusInfo.additionalInfo string[512]


def ref_of(component: m.Component, variable: m.Variable) -> VariableRef:
    evse = component.evse
    return VariableRef(
        component.name, variable.name, component.instance, variable.instance,
        evse.id if evse else None, evse.connector_id if evse else None,
    )


def reason_code(why: str) -> str:
    """ReasonCodeEnum value (appendix reason codes) for a VariableDef.check() message."""
    if why.startswith("below the minimum"):
        return "ValueTooLow"
    if why.startswith("above the maximum"):
        return "ValueTooHigh"
    if why.startswith("longer than"):
        return "TooLargeElement"
    return "InvalidValue"


def _info(code: str, text: str | None = None) -> m.StatusInfo:
    return m.StatusInfo(reason_code=code, additional_info=text[:MAX_INFO] if text else None)


def _limit(dm: DeviceModel, variable: str, instance: str | None = None) -> int:
    ref = VariableRef("DeviceDataCtrlr", variable, variable_instance=instance)
    if dm.definition(ref) is None:
        return 0
    v = dm.value(ref)
    return int(v) if v else 0


_LIMITS = (("ItemsPerMessage", "GetVariables"), ("BytesPerMessage", "GetVariables"),
           ("ItemsPerMessage", "SetVariables"), ("BytesPerMessage", "SetVariables"),
           ("ItemsPerMessage", "GetReport"), ("BytesPerMessage", "GetReport"),
           ("ReportingValueSize", None), ("ValueSize", None), ("ConfigurationValueSize", None))


class DeviceModelService:
    def __init__(self, dm: DeviceModel) -> None:
        self.dm = dm
        self._changes: list[tuple[VariableRef, str, str]] = []
        # DeviceDataCtrlr limits, read on every request: kept here, refreshed on change.
        self._limits: dict[tuple[str, str | None], int] = {}
        for name, instance in _LIMITS:
            self._limits[(name, instance)] = _limit(dm, name, instance)
            dm.subscribe(VariableRef("DeviceDataCtrlr", name, variable_instance=instance),
                         lambda _r, v, k=(name, instance): self._limits.__setitem__(k, int(v) if v else 0))

    def take_changes(self) -> list[tuple[VariableRef, str, str]]:
        """(ref, value, attribute) of every accepted write since the last call."""
        out, self._changes = self._changes, []
        return out

    def request_limits(self, instance: str, n_items: int, frame_bytes: int) -> tuple[str, str] | None:
        """B06.FR.16/17, B05 likewise: too many items -> OccurrenceConstraintViolation,
        too many bytes -> FormatViolation (checked before anything is looked at)."""
        items = self._limits[("ItemsPerMessage", instance)]
        if items and n_items > items:
            return ("OccurrenceConstraintViolation",
                    f"{n_items} items exceed DeviceDataCtrlr.ItemsPerMessage[{instance}] = {items}")
        size = self._limits[("BytesPerMessage", instance)]
        if size and frame_bytes > size:
            return ("FormatViolation",
                    f"{frame_bytes} bytes exceed DeviceDataCtrlr.BytesPerMessage[{instance}] = {size}")
        return None

    def _locate(self, ref: VariableRef) -> tuple[VariableDef | None, str | None]:
        if not self.dm.has_component(ref.component, ref.component_instance, ref.evse, ref.connector):
            return None, "UnknownComponent"
        d = self.dm.definition(ref)
        if d is None:
            return None, "UnknownVariable"     # also a variable that exists only with instances (B06.FR.15)
        return d, None

    def get_variables(self, req: m.GetVariablesRequest, now: float, frame_bytes: int = 0):
        if err := self.request_limits("GetVariables", len(req.get_variable_data), frame_bytes):
            return err
        reporting_size = self._limits[("ReportingValueSize", None)] or MAX_ATTRIBUTE_VALUE
        value_size = self._limits[("ValueSize", None)]
        cut = min(reporting_size, value_size) if value_size else reporting_size
        cut = min(cut, MAX_ATTRIBUTE_VALUE)
        results = []
        for item in req.get_variable_data:
            ref = ref_of(item.component, item.variable)
            attr = str(item.attribute_type or m.Attribute.Actual)
            d, status = self._locate(ref)
            value = info = None
            if d is not None:
                if attr not in d.attributes:
                    status = "NotSupportedAttributeType"
                elif d.mutability_of(attr) == "WriteOnly":
                    status, info = "Rejected", _info("WriteOnly")          # B06.FR.09
                else:
                    status = "Accepted"
                    value = (self.dm.value(ref, now, attr) or "")[:cut]   # unset: "" (B06.FR.13)
            results.append(m.GetVariableResult(
                attribute_status=m.GetVariableStatus(status),
                attribute_status_info=info,
                attribute_type=item.attribute_type,
                attribute_value=value,
                component=item.component,
                variable=item.variable,
            ))
        return m.GetVariablesResponse(get_variable_result=results)

    def set_variables(self, req: m.SetVariablesRequest, frame_bytes: int = 0):
        if err := self.request_limits("SetVariables", len(req.set_variable_data), frame_bytes):
            return err
        value_size = self._limits[("ConfigurationValueSize", None)] or self._limits[("ValueSize", None)]
        results = []
        for item in req.set_variable_data:
            ref = ref_of(item.component, item.variable)
            attr = str(item.attribute_type or m.Attribute.Actual)
            value = item.attribute_value
            d, status = self._locate(ref)
            info = None
            if d is not None:
                if attr not in d.attributes:
                    status = "NotSupportedAttributeType"
                elif d.mutability_of(attr) == "ReadOnly" or d.constant:
                    status, info = "Rejected", _info("ReadOnly")
                elif value_size and len(value) > value_size:
                    status, info = "Rejected", _info("TooLargeElement", f"longer than {value_size} characters")
                elif (why := d.check(value)) is not None:
                    status, info = "Rejected", _info(reason_code(why), why)
                elif (why := self.dm.vetoed(ref, value)) is not None:
                    status, info = "Rejected", _info("InvalidValue", why)
                else:
                    self.dm.write(ref, value, attr)
                    self._changes.append((ref, value, attr))
                    status = "RebootRequired" if d.reboot_required else "Accepted"
            results.append(m.SetVariableResult(
                attribute_status=m.SetVariableStatus(status),
                attribute_status_info=info,
                attribute_type=item.attribute_type,
                component=item.component,
                variable=item.variable,
            ))
        return m.SetVariablesResponse(set_variable_result=results)
