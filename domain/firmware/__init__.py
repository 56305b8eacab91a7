"""Block L Firmware management: the secure firmware update (L01) as a pure state machine
(`block.py`), its durable record (`update.py`) and the jobs the runtime carries out for it
(`jobs.py`)."""
