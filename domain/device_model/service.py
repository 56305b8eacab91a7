"""GetVariables / SetVariables (OCPP 2.0.1 B05, B06) over the device model."""
from __future__ import annotations

from domain import messages as m
from domain.device_model.model import DeviceModel, VariableRef

MAX_ATTRIBUTE_VALUE = 2500     # GetVariableResult.attributeValue string[2500]


def _ref(component: m.Component, variable: m.Variable) -> VariableRef:
    evse = component.evse
    return VariableRef(
        component.name, variable.name, component.instance, variable.instance,
        evse.id if evse else None, evse.connector_id if evse else None,
    )


class DeviceModelService:
    def __init__(self, dm: DeviceModel) -> None:
        self.dm = dm
        self._changes: list[tuple[VariableRef, str]] = []

    def take_changes(self) -> list[tuple[VariableRef, str]]:
        out, self._changes = self._changes, []
        return out

    def _too_many(self, n: int, instance: str) -> tuple[str, str] | None:
        limit = self.dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", instance)
        if limit and n > limit:
            return ("OccurrenceConstraintViolation",
                    f"{n} items exceed DeviceDataCtrlr.ItemsPerMessage[{instance}] = {limit}")
        return None

    def _locate(self, ref: VariableRef):
        if not self.dm.has_component(ref.component, ref.component_instance, ref.evse, ref.connector):
            return None, "UnknownComponent"
        d = self.dm.definition(ref)
        if d is None:
            return None, "UnknownVariable"
        return d, None

    def get_variables(self, req: m.GetVariablesRequest, now: float):
        if err := self._too_many(len(req.get_variable_data), "GetVariables"):
            return err
        results = []
        for item in req.get_variable_data:
            ref = _ref(item.component, item.variable)
            attr = item.attribute_type or m.Attribute.Actual
            d, status = self._locate(ref)
            value = None
            if d is not None:
                if attr != m.Attribute.Actual:
                    status = "NotSupportedAttributeType"
                elif d.mutability == "WriteOnly":
                    status = "Rejected"
                else:
                    status = "Accepted"
                    value = (self.dm.value(ref, now) or "")[:MAX_ATTRIBUTE_VALUE]
            results.append(m.GetVariableResult(
                attribute_status=m.GetVariableStatus(status),
                attribute_type=item.attribute_type,
                attribute_value=value,
                component=item.component,
                variable=item.variable,
            ))
        return m.GetVariablesResponse(get_variable_result=results)

    def set_variables(self, req: m.SetVariablesRequest):
        if err := self._too_many(len(req.set_variable_data), "SetVariables"):
            return err
        results = []
        for item in req.set_variable_data:
            ref = _ref(item.component, item.variable)
            attr = item.attribute_type or m.Attribute.Actual
            d, status = self._locate(ref)
            info = None
            if d is not None:
                if attr != m.Attribute.Actual:
                    status = "NotSupportedAttributeType"
                elif d.mutability == "ReadOnly":
                    status, info = "Rejected", "ReadOnly"
                elif (why := d.check(item.attribute_value)) is not None:
                    status, info = "Rejected", why
                else:
                    self.dm.write(ref, item.attribute_value)
                    self._changes.append((ref, item.attribute_value))
                    status = "RebootRequired" if d.reboot_required else "Accepted"
            results.append(m.SetVariableResult(
                attribute_status=m.SetVariableStatus(status),
                attribute_type=item.attribute_type,
                component=item.component,
                variable=item.variable,
                attribute_status_info=m.StatusInfo(reason_code=_reason(info), additional_info=info[:512])
                if info else None,
            ))
        return m.SetVariablesResponse(set_variable_result=results)


def _reason(info: str) -> str:
    return "ReadOnly" if info == "ReadOnly" else "InvalidValue"
