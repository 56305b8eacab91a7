"""Transactions of OCPP 2.0.1 block E (with the meter values of block J), per EVSE, pure.

`EvseTransactions` is the state machine of one EVSE; `TxSettings` the snapshot of the
device-model variables it follows; `PowerPath` / `UnlockConnector` the commands it gives the
hardware next to the `TransactionEventRequest`s it produces.
"""
from domain.transactions.fsm import (  # noqa: F401
    EvseTransactions,
    PowerPath,
    TxOutput,
    UnlockConnector,
    fault_reason,
)
from domain.transactions.settings import TX_POINTS, TxSettings  # noqa: F401
