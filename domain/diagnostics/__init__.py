"""Block N Diagnostics: GetLog (N01), the upload of the diagnostics or the security log as a
pure state machine (`block.py`), its durable record (`upload.py`) and the job the runtime
carries out for it (`jobs.py`)."""
