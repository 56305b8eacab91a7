"""Device-model values across restarts and software upgrades, on a real SQLite file:
what the CSMS set is never replaced by a (new) default, a definition set that gains or
loses variables keeps every unrelated value, and values the new definitions refuse fall
back to the default without being lost from the file."""
from __future__ import annotations

from adapters.sqlite_storage import SqliteStorage
from domain.device_model import DeviceModel, VariableDef, VariableRef

A, B, C = (VariableRef("OCPPCommCtrlr", n) for n in ("A", "B", "C"))


def release(*defs: VariableDef) -> list[VariableDef]:
    return list(defs)


def boot(path, definitions) -> tuple[SqliteStorage, DeviceModel]:
    storage = SqliteStorage(path)
    return storage, DeviceModel(definitions, storage.load_variables())


def test_csms_values_survive_upgrades_that_change_defaults_and_variables(tmp_path):
    path = tmp_path / "station.db"
    v1 = release(VariableDef(A, "integer", "1"), VariableDef(B, "integer", "2", max_limit=100))
    storage, dm = boot(path, v1)
    for ref, value in ((A, "5"), (B, "50")):          # what the CSMS set (SetVariables -> Persist)
        assert dm.write(ref, value) is None
        storage.save_variable(ref.key, value)
    storage.close()

    # v2: A's default changes, B is gone, C is new, A gains a MaxSet attribute
    v2 = release(VariableDef(A, "integer", "10", attributes=("Actual", "MaxSet"),
                             attribute_defaults=(("MaxSet", "99"),)),
                 VariableDef(C, "integer", "3"))
    storage, dm = boot(path, v2)
    assert dm.value(A) == "5" and dm.value(A, attribute="MaxSet") == "99" and dm.value(C) == "3"
    assert dm.definition(B) is None
    storage.close()

    # v3: B is back with a tighter limit that refuses the stored 50 -> its default, value kept on file
    v3 = release(VariableDef(A, "integer", "10"), VariableDef(B, "integer", "2", max_limit=10))
    storage, dm = boot(path, v3)
    assert (dm.value(A), dm.value(B)) == ("5", "2")
    assert storage.load_variables()[(B.key, "Actual")] == "50"
    storage.close()

    # back to v1: B's stored value is there again
    storage, dm = boot(path, v1)
    assert (dm.value(A), dm.value(B)) == ("5", "50")
    storage.close()
