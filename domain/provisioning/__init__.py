"""Block B Provisioning: the BootNotification and registration (B01-B03), Heartbeat and the
clock (B04, G02, C-25/C-26), the station's status after an offline period (B04), and Reset
(B11/B12). The device model's CALLs (B05-B08) are in domain/device_model/block.py."""
