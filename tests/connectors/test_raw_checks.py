"""The raw assets' own checks, which hold in production: how old the newest change landed
from a stream is, and whether the source's fields still match the mapping."""

from __future__ import annotations

from datetime import timedelta

from dagster import DagsterInstance, materialize

from assets import raw
from assets.raw import newest_update_check, schema_drift_check
from pipelines.clock import AsOf
from pipelines.landing import LandingResult
from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS
from pipelines.sources.streams import Checkpoint

from .helpers import ALL_STREAMS, source_keys
from .test_raw_assets import sandbox_resources

KEY = "test-pii-key"
NATIONAL_VOLUNTEERS = NATIONAL_STREAMS["volunteers"]
PROVINCIAL_TEAMS = PROVINCIAL_STREAMS["teams"]
# every field the national volunteers listing of the interface carries
NATIONAL_VOLUNTEER_FIELDS = {
    "id", "albp0029", "albp0003", "albp0004", "albp0005", "albp0006", "albp0010", "albp0020",
    "albp0026", "albp0034", "albp0089", "albp0090", "albp0093", "albp0094", "share_consent",
    "updated_at", "isdelete",
}


def landed(stream, cursor: str | None = None, fields: set[str] = frozenset(), rows: int = 10) -> LandingResult:
    result = LandingResult(stream.source, stream.name, "sync-1", False, rows=rows)
    result.checkpoint = Checkpoint(cursor, "42") if cursor else None
    result.fields_seen = set(fields)
    return result


def test_a_recent_change_is_fresh_and_an_old_one_is_not():
    as_of = AsOf.parse("2026-07-01T09:00:00+08:00")
    recent = newest_update_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, "2026-06-30T18:00:00+08:00"), as_of)
    assert recent.passed and recent.metadata["age_hours"].value == 15.0
    # provincial text is Beijing time without an offset
    old = newest_update_check(PROVINCIAL_TEAMS, landed(PROVINCIAL_TEAMS, "2026-06-20 09:00:00"), as_of)
    assert not old.passed and old.severity.value == "WARN"
    assert old.metadata["age_hours"].value == 11 * 24
    assert old.metadata["newest_update"].value == "2026-06-20T09:00:00+08:00"


def test_a_stream_that_never_landed_anything_is_not_fresh():
    check = newest_update_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, None, rows=0), AsOf.now())
    assert not check.passed and "nothing landed" in check.metadata["newest_update"].value


def test_the_interface_s_own_fields_are_no_drift():
    check = schema_drift_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, fields=NATIONAL_VOLUNTEER_FIELDS), KEY)
    assert check.passed
    assert check.metadata["unknown_fields"].value == "none" and check.metadata["missing_fields"].value == "none"


def test_a_new_field_and_a_vanished_one_are_named():
    fields = (NATIONAL_VOLUNTEER_FIELDS - {"albp0010"}) | {"albp0101"}
    check = schema_drift_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, fields=fields), KEY)
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["unknown_fields"].value == "albp0101"
    assert check.metadata["missing_fields"].value == "albp0010"


# field names a hostile source invented: a phone and a name typed as JSON keys
HOSTILE_FIELDS = {"tel19212340016, 上官云", "联系人皇甫嵩", "tel13812345678", "zhangsan_0851-86901234"}


def test_a_field_name_that_may_be_personal_data_is_counted_and_hashed_not_shown():
    fields = NATIONAL_VOLUNTEER_FIELDS | HOSTILE_FIELDS | {"albp0101"}
    check = schema_drift_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, fields=fields), KEY)
    assert not check.passed and check.severity.value == "WARN"
    shown = check.metadata["unknown_fields"].value
    assert shown.startswith("albp0101; 4 not shown (not identifier-like): #")
    for hostile in HOSTILE_FIELDS:
        assert hostile not in shown
    for piece in ("上官", "皇甫", "联系人", "tel", "zhangsan", "0016", "5678", "1234"):
        assert piece not in shown
    digests = shown.split(": ", 1)[1].split(", ")
    assert len(set(digests)) == 4 and all(len(d) == 9 for d in digests)
    # the same names give the same digests under one key (an engineer can follow one across
    # syncs), other digests under another key (a guessed name cannot be checked without it)
    again = schema_drift_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, fields=fields), KEY)
    assert again.metadata["unknown_fields"].value == shown
    other = schema_drift_check(NATIONAL_VOLUNTEERS, landed(NATIONAL_VOLUNTEERS, fields=fields), "another-key")
    assert other.metadata["unknown_fields"].value != shown


def test_a_field_name_shaped_like_the_contracts_own_is_shown():
    from pipelines.logging_privacy import is_safe_name

    assert all(is_safe_name(name) for name in NATIONAL_VOLUNTEER_FIELDS | {"updateTime", "leaderMobile", "x-y.z"})
    # a number glued to letters, a landline, Han text, a space, too long
    assert not any(is_safe_name(name) for name in
                   ["tel13812345678", "a86901234", "上官云", "name 2", "9abc", "a" * 65, ""])


def test_a_field_ignored_on_purpose_is_no_drift():
    fields = {"id", "teamName", "creditCode", "regStatus", "level", "hub", "areaCode", "serviceTypes",
              "foundDate", "leader", "leaderMobile", "memberCount", "nationalTeamNo", "creditStatus",
              "status", "updateTime", "isDeleted"}
    assert schema_drift_check(PROVINCIAL_TEAMS, landed(PROVINCIAL_TEAMS, fields=fields), KEY).passed


def test_the_checks_run_with_every_raw_asset(world, servers, data_dir):
    """Against the sandbox: no drift; each stream's newest change is the newest row of the
    world's own tables, judged against the run's instant (its `as_of` tag)."""
    as_of = AsOf.parse("2026-07-01T09:00:00+08:00")
    result = materialize(raw.assets, resources=sandbox_resources(servers, data_dir),
                         instance=DagsterInstance.ephemeral(), tags={"as_of": as_of.isoformat()})
    checks = {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}
    assert len(checks) == 2 * len(raw.assets)
    for source, stream in ALL_STREAMS:
        assert checks[(f"{source}_{stream}", "schema_drift")].passed
        age = checks[(f"{source}_{stream}", "newest_update_age")]
        newest = AsOf.parse(max(updated for _, updated in source_keys(world, source, stream)))
        assert age.metadata["newest_update"].value == newest.isoformat()
        limit = timedelta(days=400 if stream == "evaluations" else 3)
        assert age.passed == (as_of.instant - newest.instant <= limit), (source, stream)
    # the streams that change all day are fresh as of the world's day, stale months later
    assert checks[("national_volunteers", "newest_update_age")].passed
    later = materialize(raw.assets[:1], resources=sandbox_resources(servers, data_dir),
                        instance=DagsterInstance.ephemeral(), tags={"as_of": "2026-12-01T09:00:00+08:00"})
    assert not any(c.passed for c in later.get_asset_check_evaluations() if c.check_name == "newest_update_age")
