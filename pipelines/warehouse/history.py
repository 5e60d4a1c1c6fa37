"""Organization history: status, registration status and credit status with valid from / to.

Both sources only say what an organization is now. The history is kept by the warehouse
itself: each publish reads the previous `organization_status_history` from the target,
compares the open row of each organization with its current golden values, and

* keeps the open row where nothing changed (a rerun with no change adds nothing);
* closes it (valid_to) and opens a new row where a value changed, both dated by the latest
  `updated_at` of the organization's source records (Beijing date): the source's own record
  of when it changed, and the same date on a rerun;
* opens a first row for an organization never seen, from its founding date where known
  (`start_inferred`: the value seen now is assumed to have held since), so that
  "registered at the end of 2025" has an answer from the first sync on;
* closes the open row of an organization that no longer exists (merged away) at `as_of`.

valid_from is inclusive, valid_to exclusive, and the open row has valid_to NULL.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

HISTORY_TABLE = "organization_status_history"

HISTORY_SQL = """
CREATE OR REPLACE TEMP TABLE _history_current AS
SELECT o.org_key, o.status, o.registration_status, o.credit_status, o.founded_on,
       coalesce(changes.changed_on, getvariable('as_of')) AS changed_on
FROM dim_organization o
LEFT JOIN (
    SELECT m.org_key,
           beijing_date(max(s.updated_at)) AS changed_on
    FROM in_staged_organizations s
    JOIN in_organization_source_map m ON m.source = s.source AND m.source_id = s.source_id
    GROUP BY m.org_key
) changes ON changes.org_key = o.org_key;

CREATE OR REPLACE TEMP TABLE _history_open AS
SELECT * FROM _history_previous WHERE valid_to IS NULL;

CREATE OR REPLACE TEMP TABLE _history_last_closed AS
SELECT org_key, max(valid_to) AS last_valid_to
FROM _history_previous WHERE valid_to IS NOT NULL GROUP BY org_key;

CREATE OR REPLACE TEMP TABLE _history_draft AS
WITH compared AS (
    SELECT p.*, c.status AS new_status, c.registration_status AS new_registration_status,
           c.credit_status AS new_credit_status, c.changed_on,
           (p.status IS NOT DISTINCT FROM c.status
            AND p.registration_status IS NOT DISTINCT FROM c.registration_status
            AND p.credit_status IS NOT DISTINCT FROM c.credit_status) AS unchanged
    FROM _history_open p JOIN _history_current c ON c.org_key = p.org_key
)
-- rows closed at an earlier sync stay as they are
SELECT org_key, status, registration_status, credit_status, valid_from, valid_to,
       false AS is_current, start_inferred, source_changed_on
FROM _history_previous WHERE valid_to IS NOT NULL
UNION ALL
-- open rows whose values still hold
SELECT org_key, status, registration_status, credit_status, valid_from, NULL,
       true, start_inferred, source_changed_on
FROM compared WHERE unchanged
UNION ALL
-- open rows whose values changed: closed on the change date (a row that would close on
-- the day it opened held for less than a day by our dating and is replaced, not kept) ...
SELECT org_key, status, registration_status, credit_status, valid_from,
       changed_on, false, start_inferred, source_changed_on
FROM compared WHERE NOT unchanged AND changed_on > valid_from
UNION ALL
-- ... and the new values from that date
SELECT org_key, new_status, new_registration_status, new_credit_status,
       greatest(changed_on, valid_from), NULL, true, false, changed_on
FROM compared WHERE NOT unchanged
UNION ALL
-- organizations without an open row: first seen, or back after being closed
SELECT c.org_key, c.status, c.registration_status, c.credit_status,
       CASE WHEN l.last_valid_to IS NULL THEN least(coalesce(c.founded_on, c.changed_on), c.changed_on)
            ELSE greatest(c.changed_on, l.last_valid_to) END,
       NULL, true, l.last_valid_to IS NULL, c.changed_on
FROM _history_current c
LEFT JOIN _history_last_closed l ON l.org_key = c.org_key
WHERE c.org_key NOT IN (SELECT org_key FROM _history_open)
UNION ALL
-- organizations that no longer exist: closed at the publishing date
SELECT p.org_key, p.status, p.registration_status, p.credit_status, p.valid_from,
       greatest(getvariable('as_of'), p.valid_from), false, p.start_inferred, p.source_changed_on
FROM _history_open p
WHERE p.org_key NOT IN (SELECT org_key FROM _history_current);
"""


def empty_history() -> pa.Table:
    return pa.table(
        {
            "org_key": pa.array([], pa.string()),
            "status": pa.array([], pa.string()),
            "registration_status": pa.array([], pa.string()),
            "credit_status": pa.array([], pa.string()),
            "valid_from": pa.array([], pa.date32()),
            "valid_to": pa.array([], pa.date32()),
            "is_current": pa.array([], pa.bool_()),
            "start_inferred": pa.array([], pa.bool_()),
            "source_changed_on": pa.array([], pa.date32()),
        }
    )


def build_history(
    con: duckdb.DuckDBPyConnection, previous: pa.Table | None, as_of: dt.date
) -> str:
    """Create temp table `_history_draft` in `con` from `previous` and `dim_organization`.

    Needs `dim_organization`, `in_staged_organizations` and `in_organization_source_map` in
    `con` (see build.py) and the DuckDB variable `as_of`.
    """
    previous = empty_history() if previous is None else previous
    con.register("_history_previous_arrow", previous)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _history_previous AS SELECT "
        "CAST(org_key AS VARCHAR) AS org_key, CAST(status AS VARCHAR) AS status, "
        "CAST(registration_status AS VARCHAR) AS registration_status, "
        "CAST(credit_status AS VARCHAR) AS credit_status, CAST(valid_from AS DATE) AS valid_from, "
        "CAST(valid_to AS DATE) AS valid_to, CAST(start_inferred AS BOOLEAN) AS start_inferred, "
        "CAST(source_changed_on AS DATE) AS source_changed_on "
        "FROM _history_previous_arrow"
    )
    con.unregister("_history_previous_arrow")
    con.execute(HISTORY_SQL)
    return "SELECT * FROM _history_draft"
