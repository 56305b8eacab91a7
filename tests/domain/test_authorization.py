"""domain/authorization: token identity, the Authorization Cache, the Local Authorization
List and the start/stop decisions (OCPP 2.0.1 C01, C09-C16, D01-D02). Pure and fast.

`cache_lookup_bench(n)` is a micro-benchmark for devtools/bench.py (no timing asserted here).
"""
from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from domain import messages as m
from domain.authorization import (
    AuthCache,
    AuthSettings,
    LocalAuthList,
    accept_csms_answer,
    decide_remote_start,
    decide_start,
    decide_stop,
    evse_allowed,
    is_master_pass,
    same_token,
    should_cache,
    stopped_reason,
    token_key,
)
from domain.authorization.local_list import VERSION_KEY
from domain.device_model import DeviceModel, VariableDef, VariableRef
from domain.effects import StoreRecords

S = m.AuthorizationStatus
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
TOK = m.IdToken(id_token="04A2B3C4", type=m.IdTokenEnum.ISO14443)
OTHER = m.IdToken(id_token="99FF0011", type=m.IdTokenEnum.ISO14443)
GROUP = m.IdToken(id_token="FAMILY-1", type=m.IdTokenEnum.Central)
MASTER = "POLICE"
MASTER_GROUP = m.IdToken(id_token="police", type=m.IdTokenEnum.Central)
BIG = 1 << 30


def tok(text: str, type_: m.IdTokenEnum = m.IdTokenEnum.ISO14443) -> m.IdToken:
    return m.IdToken(id_token=text, type=type_)


def info(status: S = S.Accepted, *, evse=None, group=None, expiry=None) -> m.IdTokenInfo:
    return m.IdTokenInfo(status=status, evse_id=evse, group_id_token=group, cache_expiry_date_time=expiry)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def apply_change(store: dict[str, str], kv: dict[str, str], change: StoreRecords | None) -> None:
    """What Storage.write_records does, on dicts."""
    if change is None:
        return
    if change.clear:
        store.clear()
    for k in change.deletes:
        store.pop(k, None)
    store.update(change.upserts)
    for k, v in change.kv.items():
        if v is None:
            kv.pop(k, None)
        else:
            kv[k] = v


def full(version: int, *entries: tuple[m.IdToken, m.IdTokenInfo | None]) -> m.SendLocalListRequest:
    return m.SendLocalListRequest(
        version_number=version, update_type=m.Update.Full,
        local_authorization_list=[m.AuthorizationData(id_token=t, id_token_info=i) for t, i in entries] or None)


def diff(version: int, *entries: tuple[m.IdToken, m.IdTokenInfo | None]) -> m.SendLocalListRequest:
    return m.SendLocalListRequest(
        version_number=version, update_type=m.Update.Differential,
        local_authorization_list=[m.AuthorizationData(id_token=t, id_token_info=i) for t, i in entries] or None)


# ============================================================================ tokens

def test_token_identity_is_type_and_case_insensitive_id():
    assert token_key(tok("04a2B3c4")) == token_key(TOK) == "ISO14443:04a2b3c4"
    assert same_token(tok("04a2b3c4"), TOK)
    assert not same_token(tok("04A2B3C4", m.IdTokenEnum.ISO15693), TOK)     # the type matters
    assert not same_token(TOK, None) and not same_token(None, None)
    with_info = m.IdToken(id_token="04a2b3c4", type=m.IdTokenEnum.ISO14443,
                          additional_info=[m.AdditionalInfo(additional_id_token="x", type="y")])
    assert same_token(with_info, TOK)                                         # C01.FR.25: additionalInfo ignored


# ============================================================================ cache

def cache_with(*entries: tuple[m.IdToken, m.IdTokenInfo, float], lifetime_s: int = 3600,
               policy: str = "LRU", max_bytes: int = BIG) -> AuthCache:
    c = AuthCache(lifetime_s=lifetime_s)
    for t, i, when in entries:
        c.update(t, i, at(when), lifetime_s=lifetime_s, policy=policy, max_bytes=max_bytes)
    return c


def entry_size() -> int:
    """Size of one record of the tokens "tok0".."tok9" (same length, same info, n < 10)."""
    return cache_with((tok("tok0"), info(), 0)).size_bytes()


def keys(c: AuthCache) -> set[str]:
    return {k.split(":", 1)[1] for k in c.records()}


def test_cache_lookup_is_case_insensitive_and_reports_the_info():
    c = cache_with((TOK, info(S.Blocked, group=GROUP), 0))
    hit = c.lookup(tok("04a2b3c4"), at(1))
    assert hit is not None and hit.info.status == S.Blocked and hit.info.group_id_token == GROUP
    assert not hit.expired
    assert c.lookup(OTHER, at(1)) is None
    assert TOK in c and OTHER not in c and len(c) == 1


def test_cache_expiry_by_cache_expiry_date_time():
    c = cache_with((TOK, info(expiry=at(60)), 0))
    assert not c.lookup(TOK, at(60)).expired            # "after which": not at the instant itself
    assert c.lookup(TOK, at(61)).expired


def test_cache_expiry_by_lifetime_counts_from_the_last_use():
    c = cache_with((TOK, info(), 0), lifetime_s=100)
    assert not c.lookup(TOK, at(100)).expired
    assert c.lookup(TOK, at(101)).expired
    assert c.touch(TOK, at(50))
    assert not c.lookup(TOK, at(150)).expired and c.lookup(TOK, at(151)).expired
    assert not c.lookup(TOK, at(151), lifetime_s=1000).expired      # the current LifeTime applies
    assert not c.touch(TOK, at(500))                                # an expired entry is not revived
    assert c.lookup(TOK, at(151)).expired and not c.touch(OTHER, at(0))
    assert c.touch(TOK, at(500), lifetime_s=1000) and c.lifetime_s == 1000
    assert not c.lookup(TOK, at(1500)).expired and c.lookup(TOK, at(1500.5)).expired


def test_sub_second_times_survive_a_reload():
    c = cache_with((TOK, info(expiry=at(99.25)), 0.123456), lifetime_s=100)
    again = AuthCache(c.records(), lifetime_s=100)
    for when in (0, 99.25, 99.2501, 100.123, 100.1235):
        assert again.lookup(TOK, at(when)) == c.lookup(TOK, at(when)), when


def test_update_with_a_past_cache_expiry_removes_and_does_not_store():
    c = cache_with((TOK, info(), 0))
    c.take_changes()
    c.update(TOK, info(expiry=at(5)), at(10), lifetime_s=3600, policy="LRU", max_bytes=BIG)   # C10.FR.13
    assert len(c) == 0 and c.lookup(TOK, at(10)) is None
    assert c.take_changes() == StoreRecords("auth_cache", deletes=(token_key(TOK),))
    c.update(OTHER, info(expiry=at(5)), at(10), lifetime_s=3600, policy="LRU", max_bytes=BIG)
    assert len(c) == 0


def test_update_replaces_the_info_and_counts_a_use_unless_told():
    c = cache_with((TOK, info(), 0))
    c.update(TOK, info(S.Invalid), at(5), lifetime_s=3600, policy="LRU", max_bytes=BIG)
    assert c.lookup(TOK, at(5)).info.status == S.Invalid
    assert '"n":2' in c.records()[token_key(TOK)]
    c.update(TOK, info(S.Accepted), at(6), lifetime_s=3600, policy="LRU", max_bytes=BIG, used=False)
    assert '"n":2' in c.records()[token_key(TOK)]


def test_lru_eviction_at_the_byte_limit():
    s = entry_size()
    c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(), 1), (tok("tok2"), info(), 2))
    assert c.size_bytes() == 3 * s
    c.touch(tok("tok0"), at(3))
    c.update(tok("tok3"), info(), at(4), lifetime_s=3600, policy="LRU", max_bytes=3 * s)
    assert keys(c) == {"tok0", "tok2", "tok3"}                       # tok1 least recently used
    c.update(tok("tok4"), info(), at(5), lifetime_s=3600, policy="LRU", max_bytes=3 * s)
    assert keys(c) == {"tok0", "tok3", "tok4"}
    assert c.size_bytes() <= 3 * s and len(c) == 3


def test_lfu_eviction_ties_broken_by_recency():
    s = entry_size()
    c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(), 1), (tok("tok2"), info(), 2), policy="LFU")
    c.touch(tok("tok0"), at(3))
    c.touch(tok("tok0"), at(4))
    c.touch(tok("tok2"), at(5))
    c.update(tok("tok3"), info(), at(6), lifetime_s=3600, policy="LFU", max_bytes=3 * s)
    assert keys(c) == {"tok0", "tok2", "tok3"}                       # tok1: one use; the new one is kept
    c.update(tok("tok4"), info(), at(7), lifetime_s=3600, policy="LFU", max_bytes=3 * s)
    assert keys(c) == {"tok0", "tok2", "tok4"}                       # tok3: one use, now the least
    c2 = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(), 1), policy="LFU")
    c2.update(tok("tok2"), info(), at(2), lifetime_s=3600, policy="LFU", max_bytes=2 * s)
    assert keys(c2) == {"tok1", "tok2"}                              # equal uses: least recently used


def test_expired_entries_go_first_whatever_the_policy():
    s = entry_size()
    for policy in ("LRU", "LFU"):
        c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(expiry=at(50)), 10),
                       (tok("tok2"), info(), 20), lifetime_s=1000, policy=policy)
        for _ in range(5):
            c.touch(tok("tok1"), at(30))                          # most used and most recent ...
        c.update(tok("tok3"), info(), at(100), lifetime_s=1000, policy=policy, max_bytes=3 * s + 20)
        assert keys(c) == {"tok0", "tok2", "tok3"}, policy        # ... but past its cacheExpiryDateTime
        c.update(tok("tok4"), info(), at(1015), lifetime_s=1000, policy=policy, max_bytes=3 * s + 20)
        assert keys(c) == {"tok2", "tok3", "tok4"}, policy        # tok0 past its LifeTime


def test_an_entry_larger_than_the_cache_is_not_stored():
    c = cache_with((tok("tok0"), info(), 0))
    c.update(TOK, info(), at(1), lifetime_s=3600, policy="LRU", max_bytes=10)
    assert len(c) == 0 and c.size_bytes() == 0


def test_policy_can_change_between_updates():
    s = entry_size()
    c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(), 1))
    for i in range(3):
        c.touch(tok("tok0"), at(2 + i))
    c.touch(tok("tok1"), at(10))
    c.update(tok("tok2"), info(), at(11), lifetime_s=3600, policy="LFU", max_bytes=2 * s)
    assert keys(c) == {"tok0", "tok2"}
    with pytest.raises(ValueError):
        c.update(tok("tok3"), info(), at(12), lifetime_s=3600, policy="MRU", max_bytes=BIG)


def test_many_touches_keep_eviction_right_and_the_heaps_small():
    s = entry_size()
    c = cache_with(*[(tok(f"tok{i}"), info(), i) for i in range(5)])
    for r in range(400):
        c.touch(tok(f"tok{r % 4}"), at(10 + r))               # tok4 never touched
    assert len(c._recency) <= 2 * len(c) + 65                 # lazily compacted
    c.update(tok("tok9"), info(), at(1000), lifetime_s=3600, policy="LRU", max_bytes=5 * s + 50)
    assert "tok4" not in keys(c) and len(c) == 5


def test_purge_expired_and_discard():
    c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(expiry=at(20)), 0),
                   (tok("tok2"), info(), 50), lifetime_s=100)
    c.take_changes()
    assert c.purge_expired(at(30)) == 1 and keys(c) == {"tok0", "tok2"}
    assert c.purge_expired(at(120)) == 1 and keys(c) == {"tok2"}
    assert c.discard(tok("TOK2")) and not c.discard(tok("tok2"))
    change = c.take_changes()
    assert change.deletes == ("ISO14443:tok0", "ISO14443:tok1", "ISO14443:tok2") and not change.upserts
    assert c.size_bytes() == 0


def test_take_changes_coalesces_and_touch_costs_one_small_upsert():
    c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(), 0))
    first = c.take_changes()
    assert set(first.upserts) == {"ISO14443:tok0", "ISO14443:tok1"} and first.table == "auth_cache"
    assert c.take_changes() is None
    for i in range(5):
        c.touch(tok("tok0"), at(i))
    change = c.take_changes()
    assert list(change.upserts) == ["ISO14443:tok0"] and not change.deletes and not change.clear
    assert '"n":6' in change.upserts["ISO14443:tok0"]
    assert c.lookup(tok("tok1"), at(1)) is not None and c.take_changes() is None     # lookup writes nothing


def test_clear_is_one_change():
    c = cache_with((tok("tok0"), info(), 0))
    c.clear()
    assert len(c) == 0 and c.size_bytes() == 0
    c.update(tok("tok1"), info(), at(1), lifetime_s=3600, policy="LRU", max_bytes=BIG)
    change = c.take_changes()
    assert change.clear and list(change.upserts) == ["ISO14443:tok1"]
    store = {"ISO14443:tok0": "x", "ISO14443:old": "y"}
    apply_change(store, {}, change)
    assert store == c.records()


def test_size_bytes_is_the_utf8_size_of_the_records():
    c = cache_with((tok("tok0"), m.IdTokenInfo(status=S.Accepted, personal_message=m.MessageContent(
        format=m.MessageFormat.UTF8, content="Grüße €")), 0), (tok("tok1"), info(), 0))
    assert c.size_bytes() == sum(len(k.encode()) + len(v.encode()) for k, v in c.records().items())


def test_unreadable_records_are_dropped_and_deleted():
    good = cache_with((TOK, info(S.Blocked), 0)).records()
    c = AuthCache({**good, "ISO14443:bad": "{not json", "ISO14443:worse": '{"i":{"status":"Nope"},"s":1,"u":1}'})
    assert len(c) == 1 and c.lookup(TOK, at(0)).info.status == S.Blocked
    assert set(c.take_changes().deletes) == {"ISO14443:bad", "ISO14443:worse"}


def test_eviction_order_survives_a_reload():
    s = entry_size()
    c = cache_with((tok("tok0"), info(), 0), (tok("tok1"), info(), 1), (tok("tok2"), info(), 2))
    c.touch(tok("tok0"), at(5))
    reloaded = AuthCache(c.records(), lifetime_s=3600)
    reloaded.update(tok("tok3"), info(), at(6), lifetime_s=3600, policy="LRU", max_bytes=3 * s)
    assert keys(reloaded) == {"tok0", "tok2", "tok3"}


cache_ops = st.lists(st.one_of(
    st.tuples(st.just("update"), st.integers(0, 7), st.sampled_from(list(S)), st.integers(0, 400),
              st.one_of(st.none(), st.integers(-50, 500)), st.booleans()),
    st.tuples(st.just("touch"), st.integers(0, 7), st.integers(0, 400)),
    st.tuples(st.just("discard"), st.integers(0, 7)),
    st.tuples(st.just("clear"),),
    st.tuples(st.just("flush"),),
    st.tuples(st.just("purge"), st.integers(0, 600)),
), max_size=40)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=cache_ops, policy=st.sampled_from(["LRU", "LFU"]), max_bytes=st.sampled_from([300, 600, BIG]))
def test_cache_persistence_round_trip(ops, policy, max_bytes):
    store: dict[str, str] = {}
    c = AuthCache(store, lifetime_s=300)
    for op in ops:
        if op[0] == "update":
            _, i, status, t, exp, used = op
            x = None if exp is None else at(exp)
            c.update(tok(f"Card{i}"), info(status, expiry=x, evse=[1 + i % 2] if i % 3 == 0 else None),
                     at(t), lifetime_s=300, policy=policy, max_bytes=max_bytes, used=used)
            assert c.size_bytes() <= max_bytes
        elif op[0] == "touch":
            c.touch(tok(f"CARD{op[1]}"), at(op[2]))
        elif op[0] == "discard":
            c.discard(tok(f"card{op[1]}"))
        elif op[0] == "clear":
            c.clear()
        elif op[0] == "purge":
            c.purge_expired(at(op[1]))
        else:
            apply_change(store, {}, c.take_changes())
        assert c.size_bytes() == sum(len(k.encode()) + len(v.encode()) for k, v in c.records().items())
    apply_change(store, {}, c.take_changes())
    assert store == c.records()
    again = AuthCache(store, lifetime_s=300)
    assert again.records() == c.records() and len(again) == len(c) and again.size_bytes() == c.size_bytes()
    assert again.take_changes() is None
    for i in range(8):
        for when in (0, 250, 700):
            assert again.lookup(tok(f"card{i}"), at(when)) == c.lookup(tok(f"card{i}"), at(when))


def cache_lookup_bench(n: int = 10_000, rounds: int = 5) -> float:
    """Nanoseconds per AuthCache.lookup (hit or miss) in a cache of `n` entries."""
    c = AuthCache(lifetime_s=3600)
    tokens = [tok(f"{i:08X}") for i in range(n)]
    for i, t in enumerate(tokens):
        c.update(t, info(S.Accepted if i % 3 else S.Blocked, group=GROUP if i % 5 == 0 else None),
                 at(i % 600), lifetime_s=3600, policy="LRU", max_bytes=BIG)
    probes = tokens + [tok(f"miss{i}") for i in range(n // 10)]
    lookup = c.lookup
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for p in probes:
            lookup(p, NOW)
        best = min(best, (time.perf_counter_ns() - t0) / len(probes))
    return best


def test_cache_lookup_bench_runs():
    assert cache_lookup_bench(n=500, rounds=1) > 0


# ============================================================================ local list

def lst(*entries: tuple[m.IdToken, m.IdTokenInfo], version: int = 1) -> LocalAuthList:
    ll = LocalAuthList()
    status, _ = ll.apply(full(version, *entries), max_entries=100)
    assert status == m.SendLocalListStatus.Accepted
    return ll


def test_full_replaces_everything_and_sets_the_version():                 # TC_D_01
    ll = lst((TOK, info()), (OTHER, info(S.Blocked)), version=3)
    status, change = ll.apply(full(5, (tok("new"), info())), max_entries=100)
    assert status == m.SendLocalListStatus.Accepted and ll.version == 5 and len(ll) == 1
    assert ll.lookup(TOK) is None and ll.lookup(tok("NEW")).status == S.Accepted
    assert change.table == "local_list" and change.clear and list(change.upserts) == ["ISO14443:new"]
    assert change.kv == {VERSION_KEY: "5"}


def test_full_with_an_empty_list_empties_it():                           # TC_D_04, D01.FR.04
    ll = lst((TOK, info()), version=2)
    status, change = ll.apply(full(2), max_entries=100)
    assert status == m.SendLocalListStatus.Accepted and len(ll) == 0 and ll.version == 2
    assert change == StoreRecords("local_list", clear=True, kv={VERSION_KEY: "2"})
    assert ll.size_bytes() == 0
    empty_array = m.SendLocalListRequest(version_number=3, update_type=m.Update.Full, local_authorization_list=[])
    assert ll.apply(empty_array, max_entries=100)[0] == m.SendLocalListStatus.Accepted and ll.version == 3


def test_full_with_an_older_version_is_still_a_full_list():
    ll = lst((TOK, info()), version=7)
    status, _ = ll.apply(full(4, (OTHER, info())), max_entries=100)
    assert status == m.SendLocalListStatus.Accepted and ll.version == 4 and ll.lookup(OTHER) is not None


def test_full_skips_entries_without_id_token_info():
    ll = lst((TOK, info()), (OTHER, None))
    assert len(ll) == 1 and ll.lookup(OTHER) is None


def test_differential_upserts_and_removes():                              # TC_D_02, TC_D_03
    ll = lst((TOK, info()), (OTHER, info()), version=3)
    status, change = ll.apply(diff(4, (tok("new"), info(S.Blocked)), (tok("04a2b3c4"), None),
                                   (OTHER, info(S.Expired))), max_entries=100)
    assert status == m.SendLocalListStatus.Accepted and ll.version == 4
    assert ll.lookup(TOK) is None and ll.lookup(OTHER).status == S.Expired and ll.lookup(tok("new")).status == S.Blocked
    assert not change.clear and change.deletes == ("ISO14443:04a2b3c4",)
    assert set(change.upserts) == {"ISO14443:new", "ISO14443:99ff0011"} and change.kv == {VERSION_KEY: "4"}


def test_differential_last_entry_of_a_token_counts():
    ll = lst((TOK, info()), version=1)
    ll.apply(diff(2, (TOK, None), (tok("04a2b3c4"), info(S.Blocked))), max_entries=100)
    assert ll.lookup(TOK).status == S.Blocked
    _, change = ll.apply(diff(3, (TOK, info()), (TOK, None), (tok("absent"), None)), max_entries=100)
    assert ll.lookup(TOK) is None and change.deletes == ("ISO14443:04a2b3c4",) and not change.upserts


def test_differential_with_an_empty_list_only_sets_the_version():         # TC_D_05
    ll = lst((TOK, info()), version=3)
    status, change = ll.apply(diff(4), max_entries=100)
    assert status == m.SendLocalListStatus.Accepted and ll.version == 4 and len(ll) == 1
    assert change == StoreRecords("local_list", kv={VERSION_KEY: "4"})


@pytest.mark.parametrize("version", [3, 2])
def test_differential_version_mismatch_changes_nothing(version):          # TC_D_06, D01.FR.19
    ll = lst((TOK, info()), version=3)
    before = ll.records()
    assert ll.apply(diff(version, (OTHER, info())), max_entries=100) == (m.SendLocalListStatus.VersionMismatch, None)
    assert ll.version == 3 and ll.records() == before


@pytest.mark.parametrize("update_type", [m.Update.Full, m.Update.Differential])
def test_version_zero_or_less_fails(update_type):                          # D01.FR.18: versionNumber > 0
    ll = lst((TOK, info()), version=3)
    req = m.SendLocalListRequest(version_number=0, update_type=update_type)
    assert ll.apply(req, max_entries=100) == (m.SendLocalListStatus.Failed, None)
    assert ll.version == 3 and len(ll) == 1


def test_too_many_entries_fails_and_changes_nothing():
    ll = lst((TOK, info()), (OTHER, info()), version=1)
    before = ll.records()
    three = [(tok(f"t{i}"), info()) for i in range(3)]
    assert ll.apply(full(2, *three), max_entries=2) == (m.SendLocalListStatus.Failed, None)
    assert ll.apply(diff(2, three[0]), max_entries=2) == (m.SendLocalListStatus.Failed, None)
    assert ll.records() == before and ll.version == 1
    status, _ = ll.apply(diff(2, three[0], (TOK, None)), max_entries=2)       # one in, one out: fits
    assert status == m.SendLocalListStatus.Accepted and len(ll) == 2
    assert ll.apply(full(3, *three[:2]), max_entries=2)[0] == m.SendLocalListStatus.Accepted
    assert ll.apply(diff(4, three[2]), max_entries=3, max_bytes=ll.size_bytes() + 10)[0] == \
        m.SendLocalListStatus.Failed                                           # the byte limit


def test_local_list_size_and_round_trip():                                   # TC_D_07: persistent
    store: dict[str, str] = {}
    kv: dict[str, str] = {}
    ll = LocalAuthList(store, 0)
    assert ll.version == 0 and len(ll) == 0
    for req in (full(1, (TOK, info(group=GROUP)), (OTHER, info(S.Blocked, evse=[2]))),
                diff(2, (tok("third"), info())), diff(2, (tok("fourth"), info())), diff(5, (OTHER, None))):
        _, change = ll.apply(req, max_entries=100)
        apply_change(store, kv, change)
        again = LocalAuthList(store, int(kv[VERSION_KEY]))
        assert again.records() == ll.records() == store and again.version == ll.version
        assert again.size_bytes() == ll.size_bytes() == sum(len(k.encode()) + len(v.encode())
                                                            for k, v in store.items())
    assert len(again) == 2 and again.lookup(TOK).group_id_token == GROUP and ll.version == 5
    assert len(LocalAuthList({**store, "x": "garbage"}, 5)) == 2


# ============================================================================ settings

def dm_defs(**values: str) -> DeviceModel:
    """The authorization variables as the definition files declare them."""
    def v(comp, var, data_type, default, **kw):
        return VariableDef(VariableRef(comp, var), data_type, default, **kw)
    defs = [
        v("AuthCtrlr", "AuthorizeRemoteStart", "boolean", "false"),
        v("AuthCtrlr", "Enabled", "boolean", "true"),
        v("AuthCtrlr", "LocalAuthorizeOffline", "boolean", "true"),
        v("AuthCtrlr", "LocalPreAuthorize", "boolean", "false"),
        v("AuthCtrlr", "MasterPassGroupId", "string", None, max_limit=36),
        v("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "boolean", "false"),
        v("AuthCacheCtrlr", "Available", "boolean", "true", mutability="ReadOnly", constant=True),
        v("AuthCacheCtrlr", "DisablePostAuthorize", "boolean", "false"),
        v("AuthCacheCtrlr", "Enabled", "boolean", "true"),
        v("AuthCacheCtrlr", "LifeTime", "integer", "604800", min_limit=1, max_limit=31536000),
        v("AuthCacheCtrlr", "Policy", "OptionList", "LRU", values_list=("LRU", "LFU")),
        v("AuthCacheCtrlr", "Storage", "integer", "0", mutability="ReadOnly", max_limit=1048576),
        v("LocalAuthListCtrlr", "DisablePostAuthorize", "boolean", "false"),
        v("LocalAuthListCtrlr", "Enabled", "boolean", "false"),
        v("LocalAuthListCtrlr", "Entries", "integer", "0", mutability="ReadOnly", max_limit=10000),
        v("LocalAuthListCtrlr", "Storage", "integer", "0", mutability="ReadOnly", max_limit=4194304),
    ]
    stored = {(f"{k.split('__')[0]}/{k.split('__')[1]}", "Actual"): x for k, x in values.items()}
    return DeviceModel(defs, stored)


def test_settings_from_the_device_model_defaults():
    s = AuthSettings.from_device_model(dm_defs())
    assert s == AuthSettings(auth_enabled=True, authorize_remote_start=False, local_pre_authorize=False,
                             local_authorize_offline=True, master_pass_group_id=None,
                             offline_tx_for_unknown_id=False, cache_enabled=True, cache_lifetime_s=604800,
                             cache_policy="LRU", cache_max_bytes=1048576, cache_disable_post_authorize=False,
                             local_list_enabled=False, local_list_max_entries=10000,
                             local_list_max_bytes=4194304, local_list_disable_post_authorize=False)


def test_settings_from_the_device_model_values():
    s = AuthSettings.from_device_model(dm_defs(
        AuthCtrlr__LocalPreAuthorize="true", AuthCtrlr__MasterPassGroupId="POLICE",
        AuthCtrlr__OfflineTxForUnknownIdEnabled="true", AuthCtrlr__LocalAuthorizeOffline="false",
        AuthCtrlr__AuthorizeRemoteStart="true", AuthCtrlr__Enabled="false",
        AuthCacheCtrlr__Enabled="false", AuthCacheCtrlr__LifeTime="60", AuthCacheCtrlr__Policy="LFU",
        AuthCacheCtrlr__DisablePostAuthorize="true", LocalAuthListCtrlr__Enabled="true",
        LocalAuthListCtrlr__DisablePostAuthorize="true"))
    assert (s.local_pre_authorize, s.master_pass_group_id, s.offline_tx_for_unknown_id) == (True, "POLICE", True)
    assert (s.local_authorize_offline, s.authorize_remote_start, s.auth_enabled) == (False, True, False)
    assert (s.cache_enabled, s.cache_lifetime_s, s.cache_policy, s.cache_disable_post_authorize) == \
        (False, 60, "LFU", True)
    assert (s.local_list_enabled, s.local_list_disable_post_authorize) == (True, True)


def test_settings_tolerate_missing_variables():
    s = AuthSettings.from_device_model(DeviceModel([]))
    assert s.auth_enabled and s.local_authorize_offline and not s.local_pre_authorize
    assert not s.cache_enabled and not s.local_list_enabled and not s.offline_tx_for_unknown_id
    assert s.master_pass_group_id is None and s.cache_policy == "LRU" and s.cache_lifetime_s == 604800
    assert {c for c, _ in AuthSettings.VARIABLES} == {"AuthCtrlr", "AuthCacheCtrlr", "LocalAuthListCtrlr"}


# ============================================================================ decide_start: the table

def world(list_entry: m.IdTokenInfo | None, cache_entry: m.IdTokenInfo | None, cache_expired: bool = False,
          token: m.IdToken = TOK) -> tuple[LocalAuthList, AuthCache]:
    ll = LocalAuthList()
    if list_entry is not None:
        ll.apply(full(1, (token, list_entry)), max_entries=100)
    c = AuthCache(lifetime_s=3600)
    if cache_entry is not None:
        c.update(token, cache_entry, at(-7200 if cache_expired else -10), lifetime_s=3600, policy="LRU",
                 max_bytes=BIG)
    return ll, c


def conf(**kw) -> AuthSettings:
    base = dict(local_list_enabled=True, cache_enabled=True, cache_lifetime_s=3600,
                master_pass_group_id=MASTER, local_pre_authorize=True, local_authorize_offline=True)
    base.update(kw)
    return AuthSettings(**base)


A, I, B, E = info(S.Accepted), info(S.Invalid), info(S.Blocked), info(S.Expired)
MP = info(S.Accepted, group=MASTER_GROUP)
EV2 = info(S.Accepted, evse=[2])
PAST = info(S.Accepted, expiry=at(-1))

# (id, online, settings, list entry, cache entry, cache expired, evse, outcome, source, info status)
START_TABLE = [
    # --- online
    ("online unknown asks (C01)", True, {}, None, None, False, 1, "ask_csms", "csms", None),
    ("TC_C_27 list Accepted, LocalPreAuthorize", True, {}, A, None, False, 1, "accepted", "local_list", S.Accepted),
    ("list Accepted, no LocalPreAuthorize asks", True, {"local_pre_authorize": False}, A, None, False, 1,
     "ask_csms", "local_list", S.Accepted),
    ("TC_C_28 list Invalid asks", True, {}, I, None, False, 1, "ask_csms", "local_list", S.Invalid),
    ("TC_C_29 list Blocked asks", True, {}, B, None, False, 1, "ask_csms", "local_list", S.Blocked),
    ("TC_C_30 list Expired asks", True, {}, E, None, False, 1, "ask_csms", "local_list", S.Expired),
    ("TC_C_58 list Invalid, list DisablePostAuthorize", True, {"local_list_disable_post_authorize": True},
     I, None, False, 1, "rejected", "local_list", S.Invalid),
    ("list Invalid, only the cache's DisablePostAuthorize", True, {"cache_disable_post_authorize": True},
     I, None, False, 1, "ask_csms", "local_list", S.Invalid),
    ("list disabled: its entry is not used", True, {"local_list_enabled": False}, A, None, False, 1,
     "ask_csms", "csms", None),
    ("TC_C_08 cache Accepted, LocalPreAuthorize", True, {}, None, A, False, 1, "accepted", "cache", S.Accepted),
    ("TC_C_36 cache Accepted, no LocalPreAuthorize", True, {"local_pre_authorize": False}, None, A, False, 1,
     "ask_csms", "cache", S.Accepted),
    ("TC_C_09 cache Invalid asks", True, {}, None, I, False, 1, "ask_csms", "cache", S.Invalid),
    ("TC_C_10 cache Blocked asks", True, {}, None, B, False, 1, "ask_csms", "cache", S.Blocked),
    ("TC_C_11 cache Expired asks", True, {}, None, E, False, 1, "ask_csms", "cache", S.Expired),
    ("TC_C_57 cache Invalid, cache DisablePostAuthorize", True, {"cache_disable_post_authorize": True},
     None, I, False, 1, "rejected", "cache", S.Invalid),
    ("cache Invalid, only the list's DisablePostAuthorize", True, {"local_list_disable_post_authorize": True},
     None, I, False, 1, "ask_csms", "cache", S.Invalid),
    ("TC_C_46 cache past LifeTime = not cached", True, {}, None, A, True, 1, "ask_csms", "csms", None),
    ("cache past cacheExpiryDateTime = not cached", True, {}, None, info(expiry=at(-1)), False, 1,
     "ask_csms", "csms", None),
    ("cache past LifeTime + DisablePostAuthorize still asks", True, {"cache_disable_post_authorize": True},
     None, I, True, 1, "ask_csms", "csms", None),
    ("cache disabled: its entry is not used", True, {"cache_enabled": False}, None, A, False, 1,
     "ask_csms", "csms", None),
    ("TC_C_25 list Invalid wins over cache Accepted", True, {}, I, A, False, 1, "ask_csms", "local_list", S.Invalid),
    ("list Accepted wins over cache Invalid", True, {}, A, I, False, 1, "accepted", "local_list", S.Accepted),
    ("TC_C_14 master pass in cache cannot start", True, {}, None, MP, False, 1, "rejected", "master_pass", S.Accepted),
    ("master pass in list cannot start", True, {}, MP, None, False, 1, "rejected", "master_pass", S.Accepted),
    ("master pass group unset: an ordinary group", True, {"master_pass_group_id": None}, MP, None, False, 1,
     "accepted", "local_list", S.Accepted),
    ("list Accepted for EVSE 2 only, at EVSE 1: asks", True, {}, EV2, None, False, 1,
     "ask_csms", "local_list", S.NotAllowedTypeEVSE),
    ("list Accepted for EVSE 2 only, at EVSE 1, DisablePostAuthorize", True,
     {"local_list_disable_post_authorize": True}, EV2, None, False, 1, "rejected", "local_list",
     S.NotAllowedTypeEVSE),
    ("list Accepted for EVSE 2, at EVSE 2", True, {}, EV2, None, False, 2, "accepted", "local_list", S.Accepted),
    ("EVSE not chosen yet (0): not checked", True, {}, EV2, None, False, 0, "accepted", "local_list", S.Accepted),
    ("AuthCtrlr.Enabled false", True, {"auth_enabled": False}, I, None, False, 1, "accepted", "auth_disabled", None),
    # --- offline
    ("TC_C_21 offline list Accepted", False, {}, A, None, False, 1, "accepted", "local_list", S.Accepted),
    ("TC_C_22 offline list Invalid", False, {}, I, None, False, 1, "rejected", "local_list", S.Invalid),
    ("TC_C_23 offline list Blocked", False, {}, B, None, False, 1, "rejected", "local_list", S.Blocked),
    ("TC_C_24 offline list Expired", False, {}, E, None, False, 1, "rejected", "local_list", S.Expired),
    ("TC_C_25 offline list Invalid, cache Accepted, unknown allowed", False, {"offline_tx_for_unknown_id": True},
     I, A, False, 1, "rejected", "local_list", S.Invalid),
    ("TC_C_26 offline unknown, OfflineTxForUnknownId", False, {"offline_tx_for_unknown_id": True},
     None, None, False, 1, "accepted", "offline_unknown", None),
    ("offline unknown", False, {}, None, None, False, 1, "rejected", "unknown", None),
    ("TC_C_16 offline cache Accepted", False, {}, None, A, False, 1, "accepted", "cache", S.Accepted),
    ("offline cache Blocked, unknown allowed", False, {"offline_tx_for_unknown_id": True}, None, B, False, 1,
     "rejected", "cache", S.Blocked),
    ("offline cache Accepted, no LocalAuthorizeOffline", False, {"local_authorize_offline": False},
     None, A, False, 1, "rejected", "cache", S.Accepted),
    ("offline list Accepted, no LocalAuthorizeOffline, unknown allowed", False,
     {"local_authorize_offline": False, "offline_tx_for_unknown_id": True}, A, None, False, 1,
     "accepted", "offline_unknown", S.Accepted),
    ("offline cache past LifeTime = unknown", False, {}, None, A, True, 1, "rejected", "unknown", None),
    ("offline cache past LifeTime, unknown allowed", False, {"offline_tx_for_unknown_id": True}, None, I, True, 1,
     "accepted", "offline_unknown", None),
    ("offline master pass in cache", False, {"offline_tx_for_unknown_id": True}, None, MP, False, 1,
     "rejected", "master_pass", S.Accepted),
    ("offline list Accepted for EVSE 2, at EVSE 1", False, {"offline_tx_for_unknown_id": True}, EV2, None, False, 1,
     "rejected", "local_list", S.NotAllowedTypeEVSE),
    ("offline, list disabled, cache Accepted", False, {"local_list_enabled": False}, I, A, False, 1,
     "accepted", "cache", S.Accepted),
    ("offline, both disabled", False, {"local_list_enabled": False, "cache_enabled": False}, A, A, False, 1,
     "rejected", "unknown", None),
    ("offline, AuthCtrlr.Enabled false", False, {"auth_enabled": False}, None, None, False, 1,
     "accepted", "auth_disabled", None),
]


@pytest.mark.parametrize(("online", "kw", "list_entry", "cache_entry", "cache_expired", "evse",
                          "outcome", "source", "status"),
                         [row[1:] for row in START_TABLE], ids=[row[0] for row in START_TABLE])
def test_decide_start_table(online, kw, list_entry, cache_entry, cache_expired, evse, outcome, source, status):
    ll, c = world(list_entry, cache_entry, cache_expired)
    d = decide_start(tok("04a2b3c4"), evse_id=evse, online=online, now_utc=NOW, settings=conf(**kw),
                     local_list=ll, cache=c)
    assert (d.outcome, d.source) == (outcome, source), d.reason
    assert (None if d.info is None else d.info.status) == status
    assert d.reason and "\n" not in d.reason
    assert d.provisional == (outcome == "accepted" and source != "auth_disabled")
    assert d.accepted == (outcome == "accepted")


def test_decide_start_without_list_or_cache_objects():
    for online, expected in ((True, "ask_csms"), (False, "rejected")):
        d = decide_start(TOK, evse_id=1, online=online, now_utc=NOW, settings=conf(), local_list=None, cache=None)
        assert d.outcome == expected


# Every combination of the dimensions, checked against the rules' invariants.
LIST_STATES = [None, A, I, B, E, info(S.ConcurrentTx), info(S.NoCredit), MP, EV2, info(S.Invalid, group=MASTER_GROUP)]
CACHE_STATES = [(None, False), (A, False), (I, False), (A, True), (MP, False), (EV2, False), (PAST, False)]
WORLDS = {(li, ci): world(LIST_STATES[li], CACHE_STATES[ci][0], CACHE_STATES[ci][1])
          for li in range(len(LIST_STATES)) for ci in range(len(CACHE_STATES))}


def test_decide_start_invariants_over_every_combination():
    n = 0
    for (li, ci), (ll, c) in WORLDS.items():
        for online, list_on, cache_on, lpa, lao, unknown_ok, list_dpa, cache_dpa, evse in itertools.product(
                (True, False), (True, False), (True, False), (True, False), (True, False), (True, False),
                (True, False), (True, False), (1, 2)):
            s = conf(local_list_enabled=list_on, cache_enabled=cache_on, local_pre_authorize=lpa,
                     local_authorize_offline=lao, offline_tx_for_unknown_id=unknown_ok,
                     local_list_disable_post_authorize=list_dpa, cache_disable_post_authorize=cache_dpa)
            d = decide_start(TOK, evse_id=evse, online=online, now_utc=NOW, settings=s, local_list=ll, cache=c)
            n += 1
            list_info = LIST_STATES[li] if list_on else None
            cache_info, cache_expired = CACHE_STATES[ci]
            if not cache_on or cache_expired or (cache_info is not None and cache_info is PAST):
                cache_info = None
            known = list_info if list_info is not None else cache_info
            if not online:
                assert d.outcome != "ask_csms"
            if known is not None:
                # the list wins over the cache; the decision rests on what is known
                assert d.source in ("local_list" if list_info is not None else "cache", "master_pass",
                                    "offline_unknown")
                assert d.info is not None and d.info.group_id_token == known.group_id_token
                if is_master_pass(known, s):
                    assert d.outcome == "rejected" and d.source == "master_pass"
                if known.status != S.Accepted or not evse_allowed(known, evse):
                    assert d.outcome != "accepted"            # never without the CSMS
                    if online and not (list_dpa if list_info is not None else cache_dpa) \
                            and not is_master_pass(known, s):
                        assert d.outcome == "ask_csms"
                elif online and not is_master_pass(known, s):
                    assert d.outcome == ("accepted" if lpa else "ask_csms")
                elif not is_master_pass(known, s):
                    assert d.outcome == ("accepted" if lao or unknown_ok else "rejected")
            else:
                assert d.info is None
                if online:
                    assert d.outcome == "ask_csms"
                else:
                    assert d.outcome == ("accepted" if unknown_ok else "rejected")
                    assert d.source == ("offline_unknown" if unknown_ok else "unknown")
            if d.outcome == "accepted":
                assert d.provisional and (d.info is None or d.info.status == S.Accepted)
    assert n == len(WORLDS) * 512


statuses = st.sampled_from(list(S))
groups = st.one_of(st.none(), st.just(GROUP), st.just(MASTER_GROUP),
                   st.builds(lambda t: m.IdToken(id_token=t, type=m.IdTokenEnum.Central), st.sampled_from(["g1", "G2"])))
infos = st.builds(lambda s, e, g: m.IdTokenInfo(status=s, evse_id=e, group_id_token=g),
                  statuses, st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=1, max_size=2)), groups)
auth_settings = st.builds(
    AuthSettings, auth_enabled=st.booleans(), local_pre_authorize=st.booleans(),
    local_authorize_offline=st.booleans(), master_pass_group_id=st.sampled_from([None, MASTER, "police"]),
    offline_tx_for_unknown_id=st.booleans(), cache_enabled=st.booleans(), cache_lifetime_s=st.just(3600),
    cache_disable_post_authorize=st.booleans(), local_list_enabled=st.booleans(),
    local_list_disable_post_authorize=st.booleans())
cases = st.tuples(st.one_of(st.none(), infos), st.one_of(st.none(), infos), st.booleans(), st.booleans(),
                  st.integers(1, 3), auth_settings, st.sampled_from(["04a2b3c4", "04A2B3C4"]))


@hsettings(max_examples=300, deadline=None)
@given(case=cases)
def test_decide_start_properties(case):
    list_entry, cache_entry, cache_expired, online, evse, s, text = case
    ll, c = world(list_entry, cache_entry, cache_expired)
    d = decide_start(tok(text), evse_id=evse, online=online, now_utc=NOW, settings=s, local_list=ll, cache=c)
    if not online:
        assert d.outcome != "ask_csms"                                   # offline never asks
    if not s.auth_enabled:
        assert d.outcome == "accepted"
        return
    known_list = list_entry if s.local_list_enabled else None
    known_cache = cache_entry if s.cache_enabled and not cache_expired else None
    if known_list is not None and known_cache is not None:
        assert d.source != "cache"                                      # the list wins
        if d.source != "offline_unknown":                               # (decided as unknown: no info)
            assert d.info.group_id_token == known_list.group_id_token
    known = known_list if known_list is not None else known_cache
    if known is not None and is_master_pass(known, s):
        assert d.outcome == "rejected" and d.source == "master_pass"    # a master pass never starts
    # C15 (README "Offline with a cached Unknown"): an entry saying Unknown is decided offline as
    # an unknown token; every other non-Accepted entry is refused without the CSMS
    unknown_offline = (known is not None and not online and s.offline_tx_for_unknown_id
                       and known.status == S.Unknown and not is_master_pass(known, s))
    if unknown_offline:
        assert d.outcome == "accepted" and d.source == "offline_unknown" and d.info is None
    elif known is not None and (known.status != S.Accepted or not evse_allowed(known, evse)):
        assert d.outcome != "accepted"                                  # not without the CSMS
    if d.outcome == "accepted":
        assert d.provisional
        assert d.info is None or (d.info.status == S.Accepted and evse_allowed(d.info, evse))
    # knowing a token is Accepted never makes it worse off than not knowing it
    if d.outcome == "rejected" and known is not None and known.status == S.Accepted \
            and evse_allowed(known, evse) and not is_master_pass(known, s):
        blank = decide_start(tok("someone-else"), evse_id=evse, online=online, now_utc=NOW, settings=s,
                             local_list=ll, cache=c)
        assert blank.outcome == "rejected"


def test_decide_remote_start():
    ll, c = world(I, None)
    d = decide_remote_start(TOK, evse_id=1, online=True, now_utc=NOW, settings=conf(), local_list=ll, cache=c)
    assert (d.outcome, d.source) == ("accepted", "remote_start") and not d.provisional
    d = decide_remote_start(TOK, evse_id=1, online=True, now_utc=NOW, settings=conf(authorize_remote_start=True),
                            local_list=ll, cache=c)
    assert (d.outcome, d.source) == ("ask_csms", "local_list")


# ============================================================================ the CSMS's answer, caching

@pytest.mark.parametrize(("answer", "evse", "outcome", "source", "status"), [
    (A, 1, "accepted", "csms", S.Accepted),                                     # TC_C_12, TC_C_31
    (I, 1, "rejected", "csms", S.Invalid),                                      # TC_C_02
    (B, 1, "rejected", "csms", S.Blocked),                                      # TC_C_06
    (E, 1, "rejected", "csms", S.Expired),                                      # TC_C_07
    (EV2, 1, "rejected", "csms", S.NotAllowedTypeEVSE),
    (EV2, 2, "accepted", "csms", S.Accepted),
    (MP, 1, "rejected", "master_pass", S.Accepted),                             # TC_C_45
    (PAST, 1, "accepted", "csms", S.Accepted),                                  # expiry: only for the cache
])
def test_accept_csms_answer(answer, evse, outcome, source, status):
    d = accept_csms_answer(answer, evse_id=evse, now_utc=NOW, settings=conf())
    assert (d.outcome, d.source, d.info.status) == (outcome, source, status) and not d.provisional
    if answer is MP:
        assert accept_csms_answer(answer, evse_id=evse, now_utc=NOW).outcome == "accepted"   # no settings


def test_should_cache():
    s = conf()
    assert all(should_cache(info(st_), s, now_utc=NOW) for st_ in S)            # every status (TC_C_09..11)
    assert should_cache(MP, s)                                                  # TC_C_14
    assert not should_cache(A, conf(cache_enabled=False))
    assert not should_cache(A, s, in_local_list=True)                           # the list's tokens stay out
    assert should_cache(A, conf(local_list_enabled=False), in_local_list=True)
    assert not should_cache(PAST, s, now_utc=NOW)                               # C10.FR.13 (errata)
    assert should_cache(info(expiry=at(1)), s, now_utc=NOW)


# ============================================================================ decide_stop

def stop(presented, *, tx_token=TOK, tx_group=GROUP, presented_info=None, online=True, info_source=None, **kw):
    return decide_stop(presented, tx_token=tx_token, tx_group=tx_group, presented_info=presented_info,
                       settings=conf(**kw), online=online, info_source=info_source)


def test_the_same_token_stops_at_once():
    assert stop(tok("04a2b3c4")) == "stop"
    assert stop(tok("04a2b3c4"), online=False, tx_group=None) == "stop"
    # another type is another token: unknown, so the CSMS is asked (TC_C_04)
    assert stop(tok("04A2B3C4", m.IdTokenEnum.ISO15693), tx_group=None, master_pass_group_id=None) == "ask_csms"


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, "ask_csms"),                                                            # TC_C_04, TC_C_39: learn its group
    ({"online": False}, "refuse"),
    ({"tx_group": None, "master_pass_group_id": None}, "ask_csms"),             # unknown: asked all the same (TC_C_04)
    ({"tx_group": None}, "ask_csms"),                                            # it might be a master pass
    ({"presented_info": info(group=GROUP), "info_source": "csms"}, "stop"),      # TC_C_39
    ({"presented_info": info(group=tok("family-1", m.IdTokenEnum.Central)), "info_source": "local_list"},
     "stop"),                                                                    # TC_C_40
    ({"presented_info": info(group=GROUP), "info_source": "cache", "online": False}, "stop"),   # TC_C_41
    ({"presented_info": info(group=m.IdToken(id_token="FAMILY-1", type=m.IdTokenEnum.Local)),
      "info_source": "csms"}, "refuse"),                                         # a group is a whole IdToken
    ({"presented_info": info(), "info_source": "csms"}, "refuse"),               # TC_C_04
    ({"presented_info": info(group=tok("other", m.IdTokenEnum.Central)), "info_source": "cache"}, "refuse"),
    ({"presented_info": info(S.Invalid, group=GROUP), "info_source": "csms"}, "refuse"),        # TC_C_42
    ({"presented_info": info(S.Invalid, group=GROUP), "info_source": "local_list"}, "ask_csms"),  # TC_C_43
    ({"presented_info": info(S.Invalid, group=GROUP), "info_source": "cache"}, "ask_csms"),       # TC_C_44
    ({"presented_info": info(S.Invalid, group=GROUP), "info_source": "cache",
      "cache_disable_post_authorize": True}, "refuse"),
    ({"presented_info": info(S.Invalid, group=GROUP), "info_source": "local_list",
      "local_list_disable_post_authorize": True}, "refuse"),
    ({"presented_info": info(S.Invalid, group=GROUP), "info_source": "cache", "online": False}, "refuse"),
    ({"presented_info": MP, "info_source": "csms", "tx_group": None}, "stop"),   # TC_C_47..49
    ({"presented_info": MP, "info_source": "cache", "online": False}, "stop"),   # TC_C_14
    ({"presented_info": info(S.Blocked, group=MASTER_GROUP), "info_source": "csms"}, "refuse"),
    ({"presented_info": MP, "info_source": "csms", "tx_group": None, "master_pass_group_id": None}, "refuse"),
])
def test_decide_stop_for_another_token(kw, expected):
    assert stop(OTHER, **kw) == expected


def test_master_pass_identity_and_stopped_reason():
    s = conf()
    assert is_master_pass(info(group=tok("Police", m.IdTokenEnum.Local)), s)    # case-insensitive, any type
    assert not is_master_pass(info(group=GROUP), s) and not is_master_pass(None, s) and not is_master_pass(A, s)
    assert not is_master_pass(MP, conf(master_pass_group_id=None))
    assert stopped_reason(MP, s) == m.Reason.MasterPass                          # C16.FR.07 (errata)
    assert stopped_reason(info(group=GROUP), s) == m.Reason.Local and stopped_reason(None, s) == m.Reason.Local


def test_decision_infos_round_trip_on_the_wire():
    ll, c = world(EV2, None)
    d = decide_start(TOK, evse_id=1, online=True, now_utc=NOW, settings=conf(), local_list=ll, cache=c)
    wire = msgspec.json.encode(d.info)
    assert msgspec.json.decode(wire, type=m.IdTokenInfo) == d.info and b"NotAllowedTypeEVSE" in wire
