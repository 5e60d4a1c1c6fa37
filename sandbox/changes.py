"""Change sets: what happens at the sources between two syncs, with the truth kept right.

`apply_changeset(world_dir, seed, now)` changes a generated world the way a day of use
does: volunteers change phones, teams are suspended and one exits (provincial 退出, the
national row 停用), new persons register and serve, existing volunteers log new services,
services, idle accounts and a station are deleted, and a few logs are pushed up to the
national system again (a retry it accepted: a second national copy of one service). Every
changed or new row is stamped with `now` (Beijing time) in its `updated_at` column and its
body, and the truth files are rewritten so that they describe the changed world. Runs in one
transaction per database, so servers reading the world (WAL) see all of a change set or none
of it.

`touch_rows` re-stamps a few rows with the current time and changes nothing else (the
servers' "rows updated during the walk" fault): the truth does not move.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sandbox import dirt
from sandbox.clock import DAY, Clock
from sandbox.generator import generate_chunk, rng_for
from sandbox.geo import guizhou
from sandbox.people import IdRegistry, random_phones
from sandbox.services import ProjectPools, build_services
from sandbox.store import restamp_body
from sandbox.truth import (
    Truth,
    load_truth,
    person_status,
    read_world,
    true_hours,
    write_whole,
    write_world,
)
from sandbox.world_db import (
    BEIJING,
    DELETED_FIELD,
    NATIONAL,
    PROVINCIAL,
    STREAMS,
    UPDATED_FIELD,
    Built,
    Rows,
    beijing_datetime,
    beijing_seconds,
    connect,
    fixed_width_ids,
    insert_rows,
    source_time,
    take_ids,
)

NEW_WINDOW_DAYS = 30  # new persons registered and served within the last month


def _truth_time(seconds: int) -> pd.Timestamp:
    """A world instant as the truth files hold it (naive Beijing time)."""
    return pd.Timestamp(beijing_datetime(seconds).replace(tzinfo=None))


def _key(source: str, row_id):
    """A row id as its table stores it: provincial ids are integers, national ids text."""
    return int(row_id) if source == PROVINCIAL else str(row_id)


class RowEditor:
    """Reads and rewrites stored rows by id, keeping the column and the body in step."""

    def __init__(self, conns: dict[str, sqlite3.Connection], now: int) -> None:
        self.conns = conns
        self.now = now
        self.edited: set[tuple[str, str, str]] = set()  # (source, stream, row id)

    def body(self, source: str, table: str, row_id) -> dict:
        """The stored body of one row."""
        query = f"SELECT body FROM {table} WHERE id = ?"
        (text,) = self.conns[source].execute(query, (_key(source, row_id),)).fetchone()
        return json.loads(text)

    def edit(self, source: str, table: str, row_id, **fields) -> dict:
        """Set `fields` in the body of one row and stamp it with now; returns the new body."""
        body = self.body(source, table, row_id)
        body.update(fields)
        stamp = source_time(source, self.now)
        body[UPDATED_FIELD[source]] = stamp
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        self.conns[source].execute(
            f"UPDATE {table} SET updated_at = ?, body = ? WHERE id = ?",
            (stamp, text, _key(source, row_id)),
        )
        self.edited.add((source, table, str(row_id)))
        return body

    def delete(self, source: str, table: str, row_id) -> dict:
        return self.edit(
            source, table, row_id, **{DELETED_FIELD[source]: 1 if source == NATIONAL else True}
        )


def apply_changeset(world_dir: Path, seed: int = 1, now: datetime | None = None) -> dict:
    """Apply one change set to the world at `world_dir`; returns counts of what changed."""
    world_dir = Path(world_dir)
    world = read_world(world_dir)
    latest = max(
        [beijing_seconds(datetime.fromisoformat(world["as_of"]))]
        + [beijing_seconds(datetime.fromisoformat(c["now"])) for c in world["changesets"]]
    )
    if now is None:  # the real clock: two change sets within one second still come in order
        now_s = max(beijing_seconds(datetime.now(BEIJING)), latest + 1)
    else:
        now_s = beijing_seconds(now)
        if now_s <= latest:
            raise ValueError(
                f"a change set must come after the world's last change ({beijing_datetime(latest).isoformat()})"
            )
    rng = rng_for(seed, "changeset", len(world["changesets"]))
    truth = load_truth(world_dir)
    conns = {source: connect(world_dir, source) for source in (NATIONAL, PROVINCIAL)}
    editor = RowEditor(conns, now_s)
    scale = max(1, world["persons"] // 500)
    counts: dict[str, int] = {}
    try:
        for conn in conns.values():
            conn.execute("BEGIN IMMEDIATE")
        counts["phones_changed"] = _change_phones(rng, truth, editor, 2 * scale)
        counts["teams_suspended"] = _suspend_teams(rng, truth, editor, max(1, scale // 2))
        counts["teams_exited"] = _exit_team(rng, truth, editor)
        next_ids = {k: int(v) for k, v in world["next_ids"].items()}
        added_persons, added_services = _add_persons(
            rng, world, truth, conns, now_s, next_ids, 3 * scale
        )
        counts["persons_added"] = added_persons
        counts["services_added"] = added_services + _add_services(
            rng, truth, conns, now_s, next_ids, 3 * scale
        )
        counts["services_deleted"] = _delete_services(rng, truth, editor, 2 * scale)
        counts["services_pushed_again"] = _push_again(rng, truth, conns, now_s, next_ids, max(1, scale // 2))
        counts["accounts_deleted"] = _delete_idle_accounts(rng, truth, editor, scale)
        counts["stations_deleted"] = _delete_station(rng, truth, editor)
        _restamp_truth(truth, editor)
        _refresh_truth(truth)
        for conn in conns.values():
            conn.commit()
    except BaseException:
        for conn in conns.values():
            conn.rollback()
        raise
    finally:
        for conn in conns.values():
            conn.close()
    _write_truth(world_dir, truth)
    world["next_ids"] = dict(sorted(next_ids.items()))
    world["row_counts"] = _row_counts(world_dir)
    world["changesets"].append(
        {"seed": seed, "now": beijing_datetime(now_s).isoformat(), "counts": counts}
    )
    write_world(world_dir, world)
    return counts


# --- updates -------------------------------------------------------------------------------


def _live(truth: Truth, entity: str, source: str | None = None) -> pd.DataFrame:
    accounts = truth.accounts
    mask = (accounts["entity"] == entity) & ~accounts["is_deleted"]
    if source:
        mask &= accounts["source"] == source
    return accounts[mask]


def _sample(rng: np.random.Generator, frame: pd.DataFrame, n: int) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame.iloc[rng.choice(len(frame), size=min(n, len(frame)), replace=False)]


def _change_phones(rng: np.random.Generator, truth: Truth, editor: RowEditor, n: int) -> int:
    """Volunteers who got a new phone; the new one is their true phone from now on."""
    changed = 0
    new_phone: dict[str, str] = {}  # person -> phone, the last one given winning
    for source in (NATIONAL, PROVINCIAL):
        picked = _sample(rng, _live(truth, "volunteer", source), n)
        phones = random_phones(rng, len(picked))
        for account, phone in zip(picked.itertuples(), phones):
            if source == NATIONAL:
                body = editor.body(source, "volunteers", account.row_id)
                shown = phone if body.get("share_consent") else dirt.masked_phone(phone)
                editor.edit(source, "volunteers", account.row_id, albp0010=shown)
            else:
                editor.edit(source, "volunteers", account.row_id, mobile=phone)
            new_phone[account.true_id] = phone
            changed += 1
    # one vectorized update: setting an Arrow-backed Series item by item copies it each time
    persons = truth.persons
    persons["phone"] = persons["person_id"].map(new_phone).fillna(persons["phone"])
    return changed


def _set_orgs_status(
    truth: Truth,
    editor: RowEditor,
    org_ids,
    national_code: str,
    provincial_label: str,
    status: str,
) -> None:
    """Every account of the given organizations gets the status (one pass over the accounts,
    not one per organization: a change set at the province's scale picks thousands)."""
    org_ids = set(org_ids)
    accounts = truth.accounts
    rows = accounts[(accounts["entity"] == "organization") & accounts["true_id"].isin(org_ids)]
    for row in rows.itertuples():
        if row.source == NATIONAL:
            editor.edit(NATIONAL, "teams", row.row_id, albe0026=national_code)
        else:
            editor.edit(PROVINCIAL, "teams", row.row_id, status=provincial_label)
    truth.orgs.loc[truth.orgs["org_id"].isin(org_ids), "status"] = status


def _active_orgs(truth: Truth) -> pd.DataFrame:
    return truth.orgs[truth.orgs["status"] == "active"]


def _suspend_teams(rng: np.random.Generator, truth: Truth, editor: RowEditor, n: int) -> int:
    picked = _sample(rng, _active_orgs(truth), n)
    _set_orgs_status(truth, editor, picked["org_id"], "3", "停用", "suspended")
    return len(picked)


def _exit_team(rng: np.random.Generator, truth: Truth, editor: RowEditor) -> int:
    """One team leaves by the exit mechanism: provincial 退出, the national row 停用."""
    candidates = _active_orgs(truth)
    candidates = candidates[candidates["in_provincial"]]
    both = candidates[candidates["in_national"]]
    picked = _sample(rng, both if len(both) else candidates, 1)
    _set_orgs_status(truth, editor, picked["org_id"], "3", "退出", "exited")
    return len(picked)


# --- deletions -----------------------------------------------------------------------------


def _delete_services(rng: np.random.Generator, truth: Truth, editor: RowEditor, n: int) -> int:
    """Effective services withdrawn: every row of the service is deleted (a log pushed up twice
    has two national rows), it no longer counts."""
    services = truth.services
    picked = _sample(rng, services[services["effective"]], n)
    accounts = truth.accounts
    rows = accounts.loc[(accounts["entity"] == "service") & accounts["true_id"].isin(picked["service_id"])
                        & ~accounts["is_deleted"]]
    for row in rows.itertuples():
        editor.delete(row.source, row.stream, row.row_id)
    _mark_deleted(truth, "service", picked["service_id"], editor.now)
    services.loc[services["service_id"].isin(picked["service_id"]), "effective"] = False
    return len(picked)


def _push_again(rng: np.random.Generator, truth: Truth, conns, now: int, next_ids: dict[str, int], n: int) -> int:
    """Logs pushed up to the national system a second time (a retry it accepted): a second
    national record, a copy of the first with its own id, whose `origin` names the log. Still
    one service: the truth's services do not change, only its rows gain the copy."""
    services = truth.services
    pushed = services.loc[services["effective"] & services["national_source_id"].notna()
                          & services["provincial_source_id"].notna()]
    picked = _sample(rng, pushed, n)
    if picked.empty:
        return 0
    accounts = truth.accounts
    # the truth rows of the picked records, found in one pass (the accounts of a province's
    # world are tens of millions of rows)
    first_rows = accounts.loc[(accounts["source"] == NATIONAL) & (accounts["stream"] == "service_records")
                              & accounts["row_id"].isin(picked["national_source_id"])
                              ].drop_duplicates("row_id").set_index("row_id")
    ids = fixed_width_ids(take_ids(next_ids, "national.service_records", len(picked))).to_pylist()
    stamp = source_time(NATIONAL, now)
    conn, copies = conns[NATIONAL], []
    for service, new_id in zip(picked.itertuples(), ids):
        region, text = conn.execute("SELECT region, body FROM service_records WHERE id = ?",
                                    (service.national_source_id,)).fetchone()
        body = {**json.loads(text), "id": new_id, "origin": f"provincial:{service.provincial_source_id}",
                UPDATED_FIELD[NATIONAL]: stamp}
        conn.execute("INSERT INTO service_records VALUES (?, ?, ?, ?)",
                     (new_id, stamp, region, json.dumps(body, ensure_ascii=False, separators=(",", ":"))))
        first = first_rows.loc[service.national_source_id].to_dict()
        copies.append({**first, "source_id": new_id, "row_id": new_id,
                       "updated_at": _truth_time(now), "dirt": "pushed_again"})
    truth.accounts = pd.concat([accounts, pd.DataFrame(copies, columns=accounts.columns)], ignore_index=True)
    return len(copies)


def _delete_idle_accounts(rng: np.random.Generator, truth: Truth, editor: RowEditor, n: int) -> int:
    """Volunteer accounts with no service row, deleted by their owner."""
    accounts = truth.accounts
    idle = _live(truth, "volunteer")
    idle = idle[~idle["true_id"].isin(truth.services["person_id"].unique())]
    picked = _sample(rng, idle, n)
    for row in picked.itertuples():
        editor.delete(row.source, "volunteers", row.row_id)
    hit = pd.Series(False, index=accounts.index)
    for source, rows in picked.groupby("source"):
        hit |= (
            (accounts["source"] == source)
            & (accounts["stream"] == "volunteers")
            & accounts["row_id"].isin(rows["row_id"])
        )
    accounts.loc[hit, "is_deleted"] = True
    accounts.loc[hit, "updated_at"] = _truth_time(editor.now)
    return len(picked)


def _delete_station(rng: np.random.Generator, truth: Truth, editor: RowEditor) -> int:
    picked = _sample(rng, _live(truth, "station"), 1)
    for row in picked.itertuples():
        editor.delete(PROVINCIAL, "stations", row.row_id)
    _mark_deleted(truth, "station", picked["true_id"], editor.now)
    return len(picked)


def _mark_deleted(truth: Truth, entity: str, true_ids, now: int) -> None:
    accounts = truth.accounts
    hit = (accounts["entity"] == entity) & accounts["true_id"].isin(set(true_ids))
    accounts.loc[hit, "is_deleted"] = True
    accounts.loc[hit, "updated_at"] = _truth_time(now)


# --- new rows ------------------------------------------------------------------------------


def _pools(truth: Truth) -> ProjectPools:
    projects = truth.projects.drop(columns=["category"]).rename(
        columns={
            "category_code": "category",
            "national_source_id": "national_no",
            "provincial_source_id": "provincial_id",
        }
    )
    return ProjectPools.from_projects(projects)


def _registry(truth: Truth) -> IdRegistry:
    registry = IdRegistry()
    registry.claim(truth.persons["cert_no"].str[:17].astype(np.int64).to_numpy())
    return registry


def _recent(now: int) -> Clock:
    """The clock of a change set's new rows: they all happened in the last month."""
    return Clock(as_of=now, start=now - NEW_WINDOW_DAYS * DAY)


def _restamped(built: Built, now: int) -> Built:
    """New rows all carry `now` as their last update (column and body)."""
    rows = []
    for r in built.rows:
        stamp = source_time(r.source, now)
        field = UPDATED_FIELD[r.source]
        body = pc.replace_substring_regex(r.body, f'"{field}":"[^"]*"', f'"{field}":"{stamp}"')
        rows.append(Rows(r.source, r.table, r.ids, pa.array([stamp] * len(r.ids)), r.region, body))
    for frame in built.accounts:
        frame["updated_at"] = now
    return Built(rows=rows, accounts=built.accounts, invalid=built.invalid)


def _insert(conns: dict[str, sqlite3.Connection], built: Built) -> None:
    for rows in built.rows:
        if len(rows):
            insert_rows(conns, rows)


def _append_accounts(truth: Truth, built: Built) -> None:
    frames = [
        f.assign(updated_at=f["updated_at"].to_numpy().astype("datetime64[s]"))
        for f in built.accounts
        if len(f)
    ]
    columns = truth.accounts.columns
    truth.accounts = pd.concat(
        [truth.accounts] + [f.reindex(columns=columns) for f in frames], ignore_index=True
    )


def _add_persons(
    rng, world: dict, truth: Truth, conns, now: int, next_ids: dict[str, int], n: int
) -> tuple[int, int]:
    """New persons who registered and served within the last month."""
    clock = _recent(now)
    first = next_ids.get("truth.persons", world["persons"] + 1)
    next_ids["truth.persons"] = first + n
    built, persons, services = generate_chunk(
        rng,
        n,
        first,
        clock,
        guizhou(),
        _registry(truth),
        _pools(truth),
        next_ids,
        newcomers=True,
    )
    built = _restamped(built, now)
    _insert(conns, built)
    _append_accounts(truth, built)
    truth.persons = pd.concat([truth.persons, persons], ignore_index=True)
    truth.services = pd.concat([truth.services, services], ignore_index=True)
    return len(persons), len(services)


def _add_services(rng, truth: Truth, conns, now: int, next_ids: dict[str, int], n: int) -> int:
    """Existing volunteers who served again since the last change set."""
    live = _live(truth, "volunteer")
    people = truth.persons[truth.persons["person_id"].isin(live["true_id"])]
    people = _sample(rng, people, n).reset_index(drop=True)
    if people.empty:
        return 0
    accounts = live[live["true_id"].isin(people["person_id"])]
    position = pd.Series(np.arange(len(people)), index=people["person_id"])
    frame = pd.DataFrame(
        {
            "person": accounts["true_id"].map(position).to_numpy(),
            "source": accounts["source"].to_numpy(),
            "source_id": accounts["source_id"].to_numpy(),
            "reg": now - 20 * DAY,
            "second_account": accounts.duplicated(["true_id", "source"]).to_numpy(),
        }
    )
    has = frame.groupby("person")["source"].agg(set)
    people["presence"] = [
        "both" if len(s) == 2 else ("national" if NATIONAL in s else "provincial")
        for s in has.reindex(range(len(people)))
    ]
    people["prefecture"] = people["region_code"].str[:4]
    clock = _recent(now)
    output = build_services(
        rng, people, frame, _pools(truth), clock, next_ids, plant_invalid=False, mean_services=1.5
    )
    built = _restamped(output.built, now)
    _insert(conns, built)
    _append_accounts(truth, built)
    truth.services = pd.concat([truth.services, output.truth], ignore_index=True)
    return len(output.truth)


# --- truth ---------------------------------------------------------------------------------


def _restamp_truth(truth: Truth, editor: RowEditor) -> None:
    """Edited rows' last update is now in the truth too (it decides a person's status)."""
    if not editor.edited:
        return
    accounts = truth.accounts
    # narrowed by row id in one vectorized pass, then matched on the whole key: tuples of
    # every account (tens of millions at the province's scale) took minutes
    edited_ids = pd.Series([row_id for _, _, row_id in editor.edited]).unique()
    near = accounts.loc[accounts["row_id"].isin(edited_ids), ["source", "stream", "row_id"]]
    hit = pd.MultiIndex.from_frame(near).isin(list(editor.edited))
    accounts.loc[near.index[hit], "updated_at"] = _truth_time(editor.now)


def _refresh_truth(truth: Truth) -> None:
    """Derived truth columns after the change: hours and status per person."""
    hours = true_hours(truth.services)
    truth.persons["true_hours"] = truth.persons["person_id"].map(hours).fillna(0.0).round(6)
    volunteers = truth.accounts[truth.accounts["entity"] == "volunteer"]
    truth.persons["status"] = truth.persons["person_id"].map(person_status(volunteers))


def _write_truth(world_dir: Path, truth: Truth) -> None:
    """Rewrite the truth files a change set touches (invalid rows never change)."""
    for name in ("accounts", "persons", "services", "orgs", "projects"):
        write_whole(world_dir, name, getattr(truth, name))


def _row_counts(world_dir: Path) -> dict[str, dict[str, int]]:
    counts = {}
    for source, tables in STREAMS.items():
        conn = connect(world_dir, source)
        counts[source] = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables
        }
        conn.close()
    return counts


# --- touching rows -------------------------------------------------------------------------


def touch_rows(
    world_dir_or_conn, source: str, stream: str, n: int, rng, now: datetime | None = None
) -> list:
    """Re-stamp `n` random rows of a stream with the current time (nothing else changes).

    `world_dir_or_conn` is a world folder or an open connection to that source's database;
    `rng` a `random.Random` or a numpy Generator. Returns the ids touched (as in the body).
    """
    own = not isinstance(world_dir_or_conn, sqlite3.Connection)
    conn = connect(Path(world_dir_or_conn), source) if own else world_dir_or_conn
    try:
        low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {stream}").fetchone()
        if low is None:
            return []
        # Row ids are dense (rows are never removed), so a random rowid is a random row.
        k = min(n, high - low + 1)
        if hasattr(rng, "integers"):
            rowids = (low + rng.choice(high - low + 1, size=k, replace=False)).tolist()
        else:
            rowids = rng.sample(range(low, high + 1), k)
        stamp = source_time(source, beijing_seconds(now or datetime.now(BEIJING)))
        field = UPDATED_FIELD[source]
        touched = []
        for rowid in rowids:
            found = conn.execute(
                f"SELECT id, body FROM {stream} WHERE rowid = ?", (int(rowid),)
            ).fetchone()
            if found is None:
                continue
            row_id, text = found
            body = restamp_body(text, field, stamp)
            conn.execute(
                f"UPDATE {stream} SET updated_at = ?, body = ? WHERE rowid = ?",
                (stamp, body, int(rowid)),
            )
            touched.append(row_id)
        conn.commit()
        return touched
    finally:
        if own:
            conn.close()
