"""The variables the station defines, with OCPP names and defaults.

Defaults follow the OCA appendix (dm_components_vars.csv) and the reference
product's PICS limits (ORS-*), going further where it costs nothing.
"""
from __future__ import annotations

from domain.device_model.model import VariableDef, VariableRef

TX_POINTS = ("ParkingBayOccupancy", "EVConnected", "Authorized", "PowerPathClosed", "EnergyTransfer")
CONNECTOR_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


def _d(component: str, variable: str, data_type: str, default: str | None = None, *,
       ci: str | None = None, vi: str | None = None, evse: int | None = None,
       connector: int | None = None, **kw) -> VariableDef:
    return VariableDef(VariableRef(component, variable, ci, vi, evse, connector), data_type, default, **kw)


def standard_definitions(
    evse_connectors: list[int], *, station_id: str, security_profile: int,
    basic_auth_password: str | None = None, message_timeout: int = 30,
) -> list[VariableDef]:
    ro = {"mutability": "ReadOnly"}
    defs = [
        # OCPPCommCtrlr
        _d("OCPPCommCtrlr", "HeartbeatInterval", "integer", "300", unit="s", min_limit=1, max_limit=86400),
        _d("OCPPCommCtrlr", "WebSocketPingInterval", "integer", "30", unit="s", min_limit=0, max_limit=3600),
        _d("OCPPCommCtrlr", "RetryBackOffWaitMinimum", "integer", "3", unit="s", min_limit=0, max_limit=3600),
        _d("OCPPCommCtrlr", "RetryBackOffRandomRange", "integer", "10", unit="s", min_limit=0, max_limit=3600),
        _d("OCPPCommCtrlr", "RetryBackOffRepeatTimes", "integer", "5", min_limit=0, max_limit=100),
        _d("OCPPCommCtrlr", "MessageTimeout", "integer", str(message_timeout), vi="Default", unit="s",
           min_limit=1, max_limit=3600, **ro),
        _d("OCPPCommCtrlr", "OfflineThreshold", "integer", "60", unit="s", min_limit=0, max_limit=86400 * 7),
        _d("OCPPCommCtrlr", "ResetRetries", "integer", "2", min_limit=0, max_limit=10),
        _d("OCPPCommCtrlr", "MessageAttempts", "integer", "3", vi="TransactionEvent", min_limit=1, max_limit=100),
        _d("OCPPCommCtrlr", "MessageAttemptInterval", "integer", "10", vi="TransactionEvent", unit="s",
           min_limit=1, max_limit=3600),
        _d("OCPPCommCtrlr", "QueueAllMessages", "boolean", "false"),
        _d("OCPPCommCtrlr", "FileTransferProtocols", "MemberList", "HTTP,HTTPS,FTP,FTPS",
           values_list=("HTTP", "HTTPS", "FTP", "FTPS"), **ro),
        _d("OCPPCommCtrlr", "NetworkConfigurationPriority", "SequenceList", "0", values_list=("0",)),
        _d("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "integer", "3", min_limit=1, max_limit=100),
        _d("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", "boolean", "true"),
        # SecurityCtrlr
        _d("SecurityCtrlr", "SecurityProfile", "integer", str(security_profile), min_limit=1, max_limit=3, **ro),
        _d("SecurityCtrlr", "Identity", "identifierString", station_id, max_limit=48, **ro),
        _d("SecurityCtrlr", "OrganizationName", "string", "evse-stack", max_limit=128),
        _d("SecurityCtrlr", "CertificateEntries", "integer", "0", **ro),
        _d("SecurityCtrlr", "BasicAuthPassword", "passwordString", basic_auth_password,
           mutability="WriteOnly", min_limit=16, max_limit=40) if basic_auth_password and 16 <= len(basic_auth_password) <= 40
        else _d("SecurityCtrlr", "BasicAuthPassword", "passwordString", None, mutability="WriteOnly",
                min_limit=16, max_limit=40),
        # ClockCtrlr
        _d("ClockCtrlr", "DateTime", "dateTime", None, **ro),
        _d("ClockCtrlr", "TimeSource", "SequenceList", "Heartbeat", values_list=("Heartbeat",)),
        # DeviceDataCtrlr (ORS-1..6: 20 items and 2000 bytes were the reference product's)
        *(_d("DeviceDataCtrlr", "ItemsPerMessage", "integer", "50", vi=i, **ro)
          for i in ("GetReport", "GetVariables", "SetVariables")),
        *(_d("DeviceDataCtrlr", "BytesPerMessage", "integer", "16384", vi=i, **ro)
          for i in ("GetReport", "GetVariables", "SetVariables")),
        # TxCtrlr
        _d("TxCtrlr", "TxStartPoint", "MemberList", "PowerPathClosed", values_list=TX_POINTS),
        _d("TxCtrlr", "TxStopPoint", "MemberList", "EVConnected,Authorized", values_list=TX_POINTS),
        _d("TxCtrlr", "EVConnectionTimeOut", "integer", "120", unit="s", min_limit=1, max_limit=86400),
        _d("TxCtrlr", "StopTxOnEVSideDisconnect", "boolean", "true"),
        _d("TxCtrlr", "StopTxOnInvalidId", "boolean", "true"),
        # ChargingStation
        _d("ChargingStation", "AvailabilityState", "OptionList", None, values_list=CONNECTOR_STATES, **ro),
        _d("ChargingStation", "Available", "boolean", "true", **ro),
        _d("ChargingStation", "SupplyPhases", "integer", "3", **ro),
    ]
    for evse, connectors in enumerate(evse_connectors, start=1):
        defs += [
            _d("EVSE", "AvailabilityState", "OptionList", None, evse=evse, values_list=CONNECTOR_STATES, **ro),
            _d("EVSE", "Available", "boolean", "true", evse=evse, **ro),
            _d("EVSE", "SupplyPhases", "integer", "3", evse=evse, **ro),
            _d("EVSE", "Power", "decimal", "22000", evse=evse, unit="W", **ro),
        ]
        for c in range(1, connectors + 1):
            defs += [
                _d("Connector", "AvailabilityState", "OptionList", None, evse=evse, connector=c,
                   values_list=CONNECTOR_STATES, **ro),
                _d("Connector", "Available", "boolean", "true", evse=evse, connector=c, **ro),
                _d("Connector", "ConnectorType", "string", "cType2", evse=evse, connector=c, **ro),
                _d("Connector", "SupplyPhases", "integer", "3", evse=evse, connector=c, **ro),
            ]
    return defs
