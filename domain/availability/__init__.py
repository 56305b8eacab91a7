"""Block G Availability: the status of connectors, EVSEs and the station (G01), what the CSMS
sets with ChangeAvailability (G03/G04, `model.py`), and what the CSMS is told about it and
about hardware faults (`status_report.py`, `block.py`)."""
from domain.availability.model import AVAILABILITY_KEY, STATION, Availability, Target, exists  # noqa: F401
