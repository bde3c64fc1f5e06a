"""The orchestrator's audit entries reach the catalog's audit log, in the catalog's own
database: once each, only for changes that committed, and later (never lost) when the
catalog did not take them at first."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from flowforge.app import SERVICES
from flowforge_catalog.audit.models import AuditEntry
from flowforge_catalog.audit.service import record_sent
from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.audit.models import AuditOutboxEntry
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.audit import RECORD_AUDIT
from flowforge_shared.db.engine import Database
from flowforge_shared.db.migrate import upgrade
from tests.conftest import make_settings


def migrated(url: str, service: str) -> Database:
    upgrade(url, [SERVICES[service].MIGRATIONS])
    return Database(url)


@pytest.fixture
def apart(tmp_path):
    """The catalog and the orchestrator, each on a database of its own, and a bus that
    hands the orchestrator's entries to the catalog as one process does."""
    catalog = migrated(f"sqlite:///{tmp_path / 'catalog.db'}", "catalog")
    orchestrator = migrated(f"sqlite:///{tmp_path / 'orchestrator.db'}", "orchestrator")
    bus = Bus(make_settings(tmp_path))
    bus.handle(RECORD_AUDIT, lambda payload: record_sent(catalog, payload))
    sender = audit.install(orchestrator, bus)
    yield catalog, orchestrator, bus, sender
    catalog.dispose()
    orchestrator.dispose()


def logged(catalog: Database) -> list[tuple[str, str, dict]]:
    with catalog.session() as session:
        return [
            (entry.action, entry.entity_id, entry.diff)
            for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


def outbox(orchestrator: Database) -> int:
    with orchestrator.session() as session:
        return session.scalar(select(func.count()).select_from(AuditOutboxEntry))


def change(orchestrator: Database, entity_id: str, *, fail: bool = False) -> None:
    with orchestrator.session() as session:
        audit.record(
            session,
            actor="alice",
            action="trigger.update",
            entity_type="trigger",
            entity_id=entity_id,
            before={"enabled": True},
            after={"enabled": False, "secret": "s3cret"},
        )
        if fail:
            raise RuntimeError("the change fails after its entry was kept")


def test_a_committed_change_is_in_the_catalogs_log_once_and_masked(apart):
    catalog, orchestrator, _, _ = apart
    change(orchestrator, "t1")
    [(action, entity_id, diff)] = logged(catalog)
    assert (action, entity_id) == ("trigger.update", "t1")
    assert diff["after"]["enabled"] is False and diff["after"]["secret"] != "s3cret"
    assert outbox(orchestrator) == 0


def test_a_change_rolled_back_tells_nothing(apart):
    catalog, orchestrator, _, _ = apart
    with pytest.raises(RuntimeError):
        change(orchestrator, "t1", fail=True)
    assert logged(catalog) == [] and outbox(orchestrator) == 0


def test_an_entry_the_catalog_did_not_take_is_kept_and_sent_by_the_sweep(apart, monkeypatch):
    catalog, orchestrator, bus, sender = apart
    refuse = {"on": True}

    def flaky(payload):
        if refuse["on"]:
            raise ConnectionError("the catalog does not answer")
        return record_sent(catalog, payload)

    bus.handle(RECORD_AUDIT, flaky)
    change(orchestrator, "t1")
    change(orchestrator, "t2")
    assert logged(catalog) == [] and outbox(orchestrator) == 2  # the changes stand
    refuse["on"] = False
    monkeypatch.setattr(audit, "SWEEP_AFTER", audit.timedelta(0))
    assert sender.send() == 2
    assert [entity for _, entity, _ in logged(catalog)] == ["t1", "t2"]
    assert outbox(orchestrator) == 0


def test_an_entry_sent_twice_is_recorded_once(apart):
    catalog, orchestrator, bus, _ = apart
    sent = []
    bus.handle(RECORD_AUDIT, lambda payload: sent.append(payload) or record_sent(catalog, payload))
    change(orchestrator, "t1")
    assert record_sent(catalog, sent[0]) is False  # a sweep's copy, a broker's redelivery
    assert len(logged(catalog)) == 1


@pytest.mark.postgres
def test_many_deliveries_of_one_entry_at_once_record_it_once(fresh_postgres_url, tmp_path):
    catalog = migrated(fresh_postgres_url, "catalog")
    payload = {
        "version": 1,
        "id": "0b8c3a4e-5d6f-4a7b-8c9d-0e1f2a3b4c5d",
        "at": "2026-12-06T08:00:00+00:00",
        "actor": "scheduler",
        "action": "trigger.update",
        "entityType": "trigger",
        "entityId": "t1",
        "diff": {"before": {}, "after": {}},
    }
    try:
        with ThreadPoolExecutor(8) as pool:
            recorded = list(pool.map(lambda _: record_sent(catalog, payload), range(16)))
        assert recorded.count(True) == 1
        with catalog.session() as session:
            assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
    finally:
        catalog.dispose()


def test_inside_hand_over_after_an_entry_is_kept_at_commit_and_sent_when_the_block_ends(apart):
    """Around record_lock (a run's start): the entry is in the outbox from its commit, and
    in the catalog's log once the block ends, not before; a failed change in the block
    tells nothing."""
    catalog, orchestrator, _, _ = apart
    with audit.hand_over_after():
        change(orchestrator, "t1")
        with audit.hand_over_after():  # nested: the outermost block sends
            change(orchestrator, "t2")
        with pytest.raises(RuntimeError):
            change(orchestrator, "t3", fail=True)
        assert outbox(orchestrator) == 2
        assert logged(catalog) == []
    assert [entity_id for _, entity_id, _ in logged(catalog)] == ["t1", "t2"]
    assert outbox(orchestrator) == 0
    change(orchestrator, "t4")  # after the block: at its commit again
    assert [entity_id for _, entity_id, _ in logged(catalog)][-1] == "t4"
