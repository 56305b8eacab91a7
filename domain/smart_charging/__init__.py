"""Smart Charging (OCPP 2.0.1 block K): the pure domain core.

`profiles.py`: the installed charging profiles (K01 SetChargingProfile validations, K09
GetChargingProfiles, K10 ClearChargingProfile, durable records); `composite.py`: the
composite schedule (K08) and the limit in force at an instant. Not wired into the Station yet.
"""
