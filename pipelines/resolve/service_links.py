"""Accounts tied by a pushed service: the provincial platform's own word that two accounts are one volunteer.

A provincial service log pushed to the national system becomes a national record of the same
service (contract: the log's `nationalRecordId` is the record's id, or the record's `origin`
names the log). The platform files that record under the national account it holds for the
log's volunteer, so the log's provincial account and the record's national account are the
same person's, by the platform's own link — of the same kind as a carried `nationalVolunteerNo`,
and found where the number was not carried. It is not one of the contract's deterministic rules,
so matching weighs it as strong evidence (like an equal phone), never as a rule: a name and
birth date that disagree still outweigh it, and the hard constraints hold.

In the comparison frame each account gets one `service_anchor`: a national account's own id
when some pushed service names it, a provincial account's national partner (the smallest, when
its logs name several). A provincial and a national account with equal anchors share a service.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines import duck
from pipelines.resolve.vectorized import is_in, mapped

PAIR_COLUMNS = ["provincial_id", "national_id"]


def pushed_service_pairs(services_path: Path) -> pd.DataFrame | None:
    """Distinct (provincial volunteer id, national volunteer id) of the services present in both
    systems, read from the staged services file with DuckDB (only five columns, never the
    whole table: at 4 million records a pandas copy would add to the step's peak). None when
    there is no such file."""
    if not Path(services_path).exists():
        return None
    con = duck.connect()  # (not duck.scratch: a thread count is the database's setting)
    try:
        con.execute("SET threads TO 2")
        return con.execute("""
            WITH s AS (
                SELECT source, CAST(source_id AS VARCHAR) AS id, CAST(volunteer_source_id AS VARCHAR) AS volunteer,
                       CAST(national_record_id AS VARCHAR) AS record_id, CAST(origin_log_id AS VARCHAR) AS log_id
                FROM read_parquet($path)
            ),
            p AS (SELECT * FROM s WHERE source = 'provincial'),
            n AS (SELECT * FROM s WHERE source = 'national')
            SELECT DISTINCT p.volunteer AS provincial_id, n.volunteer AS national_id
            FROM p JOIN n ON p.record_id = n.id
            WHERE p.volunteer IS NOT NULL AND n.volunteer IS NOT NULL
            UNION
            SELECT DISTINCT p.volunteer, n.volunteer
            FROM n JOIN p ON n.log_id = p.id
            WHERE p.volunteer IS NOT NULL AND n.volunteer IS NOT NULL
            ORDER BY 1, 2
        """, {"path": str(services_path)}).df()
    finally:
        con.close()


def service_anchors(accounts: pd.DataFrame, pairs: pd.DataFrame | None) -> pd.Series:
    """Per account (source, source_id), its service anchor (see the module docstring); null
    where no pushed service names it."""
    anchor = pd.Series(pd.NA, index=accounts.index, dtype="string")
    if pairs is None or not len(pairs):
        return anchor
    pairs = pairs[PAIR_COLUMNS].astype("string").dropna()
    national_named = pd.Index(pairs["national_id"].unique())
    partner_of = pairs.groupby("provincial_id")["national_id"].min()
    source_id = accounts["source_id"].astype("string")
    national = (accounts["source"] == "national").to_numpy()
    provincial = (accounts["source"] == "provincial").to_numpy()
    named = national & is_in(source_id, national_named)
    anchor[named] = source_id[named]
    partner = mapped(source_id, partner_of)
    anchor[provincial] = partner[provincial]
    return anchor
