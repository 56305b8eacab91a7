"""The station's device-model definitions as data: one JSON file per component family.

Data only: nothing here is imported or read by the domain. bootstrap.definitions reads
the files (importlib.resources); domain.device_model.definitions_loader checks them and
expands them for one installation.
The file format is described in README.md next to them.
"""
