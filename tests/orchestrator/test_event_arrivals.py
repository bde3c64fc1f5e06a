"""Which listed files count as arrived (a pure function): the glob on the name, hidden and
unreadable names, the settle time, files changed before the trigger, and the key that makes
one arrival one firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowforge_orchestrator.triggers.events import LandingFile, arrivals, firing_key

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
WATCH = datetime(2026, 12, 6, 11, 0, 0, 500000, tzinfo=UTC)


def chosen(files, **options) -> list[str]:
    settings = {
        "pattern": "*.csv",
        "watch_from": WATCH,
        "include_existing": False,
        "settle": timedelta(seconds=10),
        "now": NOW,
        **options,
    }
    return [file.path for file in arrivals(files, **settings)]


def at(path: str, seconds_ago: float, size: int = 10) -> LandingFile:
    return LandingFile(path, size, NOW - timedelta(seconds=seconds_ago))


def test_the_glob_matches_the_name_case_sensitively_and_hidden_files_never_count():
    files = [
        at("in/a.csv", 60),
        at("in/b.CSV", 60),
        at("in/c.txt", 60),
        at("in/.d.csv", 60),
        at("in/sub/e.csv", 60),
    ]
    assert chosen(files) == ["in/a.csv", "in/sub/e.csv"]


def test_a_file_younger_than_the_settle_time_waits():
    files = [at("a.csv", 9.9), at("b.csv", 10), at("c.csv", -5)]  # c: a clock ahead
    assert chosen(files) == ["b.csv"]
    assert chosen(files, settle=timedelta(0)) == ["b.csv", "a.csv"]


def test_files_changed_before_the_trigger_count_only_when_asked():
    before = LandingFile("old.csv", 1, WATCH - timedelta(seconds=1))
    same_second = LandingFile("s3.csv", 1, WATCH.replace(microsecond=0))  # S3: no fraction
    after = LandingFile("new.csv", 1, WATCH + timedelta(seconds=1))
    assert chosen([before, same_second, after]) == ["s3.csv", "new.csv"]
    assert chosen([before, after], include_existing=True) == ["old.csv", "new.csv"]


def test_a_path_a_job_may_not_read_never_counts():
    assert chosen([at("bad\\name.csv", 60), at("line\nbreak.csv", 60)]) == []


def test_the_key_is_path_size_and_time():
    file = at("a.csv", 60)
    assert firing_key(file) == firing_key(LandingFile(file.path, file.size, file.modified))
    assert firing_key(file) != firing_key(LandingFile(file.path, 11, file.modified))
    assert firing_key(file) != firing_key(at("a.csv", 30))
    assert firing_key(file) != firing_key(LandingFile("b.csv", file.size, file.modified))
    assert len(firing_key(file)) <= 200  # the column's width, whatever the path's length
