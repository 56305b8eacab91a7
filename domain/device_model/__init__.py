"""The OCPP device model: components, variables, their values and characteristics."""
from domain.device_model.model import (  # noqa: F401
    DeviceModel,
    VariableDef,
    VariableRef,
    parse_ref,
)
