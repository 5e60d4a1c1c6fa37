"""Generate a sandbox world: a seeded synthetic Guizhou projected onto both source systems.

`generate_world(out_dir, persons, seed, as_of)` writes `national.sqlite`,
`provincial.sqlite` (the rows the servers serve, in the storage format of
`sandbox/world_db.py`), `truth/*.parquet` (what each row really is) and `world.json`.
Organizations, stations, projects and evaluations (~15% of rows; sandbox/teams.py,
stations.py, projects.py, evaluations.py) are built in memory first; persons and their
accounts, services and redemptions (people.py, services.py, redemptions.py) are then
streamed in chunks of 20,000 persons, so memory stays bounded whatever the size. The same
(persons, seed, as_of) gives the same files: every random draw comes from a generator
seeded by (seed, phase, chunk).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox.clock import DAY, Clock
from sandbox.evaluations import build_evaluations
from sandbox.geo import Geography, guizhou
from sandbox.harness import (
    NATIONAL_CLIENT_ID,
    NATIONAL_CLIENT_SECRET,
    PROVINCIAL_APP_KEY,
    PROVINCIAL_APP_SECRET,
)
from sandbox.hostile import plant_hostile_rows
from sandbox.names import CATEGORY_CODES, CATEGORY_LABELS
from sandbox.people import (
    IdRegistry,
    allocate_accounts,
    build_persons,
    invalid_volunteers,
    national_volunteers,
    provincial_volunteers,
)
from sandbox.projects import build_projects, project_projects
from sandbox.redemptions import build_redemptions
from sandbox.services import ProjectPools, build_services
from sandbox.stations import build_stations
from sandbox.teams import build_orgs, project_orgs
from sandbox.truth import (
    WORLD_FILE,
    TruthWriter,
    person_status,
    true_hours,
    write_whole,
    write_world,
)
from sandbox.world_db import (
    BEIJING,
    DB_FILES,
    NATIONAL,
    PROVINCIAL,
    STREAMS,
    Built,
    beijing_datetime,
    beijing_seconds,
    create_database,
    finish_database,
    insert_rows,
    remove_database,
)

CHUNK_PERSONS = 20_000
GENERATOR_VERSION = 2  # 2: rows stored in (updated_at, id) order, id not the rowid
CREDENTIALS = {  # what world.json declares: the servers' defaults
    "national": {"client_id": NATIONAL_CLIENT_ID, "client_secret": NATIONAL_CLIENT_SECRET},
    "provincial": {"app_key": PROVINCIAL_APP_KEY, "app_secret": PROVINCIAL_APP_SECRET},
}


def rng_for(seed: int, phase: str, *keys: int) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, phase, keys)."""
    return np.random.default_rng([seed, zlib.crc32(phase.encode()), *keys])


def default_as_of() -> datetime:
    """The current Beijing time truncated to the hour."""
    return datetime.now(BEIJING).replace(minute=0, second=0, microsecond=0)


class WorldWriter:
    """Writes built rows into the two databases and truth rows into the truth files; counts."""

    def __init__(self, world_dir: Path) -> None:
        self.world_dir = world_dir
        self.partial = {s: world_dir / (DB_FILES[s] + ".partial") for s in (NATIONAL, PROVINCIAL)}
        self.conns = {s: create_database(path, s) for s, path in self.partial.items()}
        self.truth = TruthWriter(world_dir)
        self.row_counts: dict[str, dict[str, int]] = {
            s: {t: 0 for t in STREAMS[s]} for s in STREAMS
        }
        self.invalid_counts: dict[str, int] = defaultdict(int)

    def add(self, built: Built) -> None:
        for rows in built.rows:
            if len(rows):
                insert_rows(self.conns, rows)
                self.row_counts[rows.source][rows.table] += len(rows)
        for frame in built.accounts:
            self.truth.append("accounts", frame)
        for frame in built.invalid:
            self.truth.append("invalid_rows", frame)
            for rule, count in frame["rule"].value_counts().items():
                self.invalid_counts[rule] += int(count)
        for conn in self.conns.values():
            conn.commit()

    def finish(self) -> None:
        self.truth.close()
        for source, conn in self.conns.items():
            finish_database(conn, source)
            self.partial[source].replace(self.world_dir / DB_FILES[source])


def generate_world(
    out_dir: Path,
    persons: int,
    seed: int = 7,
    as_of: datetime | None = None,
    hostile: bool = False,
) -> Path:
    """Generate a world of `persons` persons into `out_dir`; returns the folder.

    `as_of` (default: now, truncated to the hour) is when the world stands: no row is
    updated after it. A naive `as_of` is Beijing time. `hostile` adds the garbage rows of
    sandbox/hostile.py to every stream, after (and without changing) everything else.
    """
    world_dir = Path(out_dir)
    world_dir.mkdir(parents=True, exist_ok=True)
    (world_dir / WORLD_FILE).unlink(missing_ok=True)
    for name in DB_FILES.values():
        remove_database(world_dir / name)
    as_of = as_of or default_as_of()
    clock = Clock.ending_at(beijing_seconds(as_of))
    geo = guizhou()
    writer = WorldWriter(world_dir)
    next_ids: dict[str, int] = defaultdict(lambda: 1)

    orgs, projects, pools = build_organizations(seed, persons, clock, geo, writer)
    registry = IdRegistry()
    for chunk, first in enumerate(range(0, persons, CHUNK_PERSONS)):
        size = min(CHUNK_PERSONS, persons - first)
        built, persons_truth, services_truth = generate_chunk(
            rng_for(seed, "persons", chunk), size, first + 1, clock, geo, registry, pools, next_ids
        )
        writer.add(built)
        writer.truth.append("persons", persons_truth)
        writer.truth.append("services", services_truth)
    write_whole(world_dir, "orgs", orgs_truth(orgs))
    write_whole(world_dir, "projects", projects_truth(projects))
    # Last, from a random stream of their own: the normal rows stay exactly as without them.
    hostile_summary = (
        plant_hostile_rows(writer, rng_for(seed, "hostile"), clock, geo) if hostile else None
    )
    world = {
        "seed": seed,
        "persons": persons,
        "as_of": beijing_datetime(clock.as_of).isoformat(),
        "history_start": beijing_datetime(clock.start).isoformat(),
        "generator_version": GENERATOR_VERSION,
        "chunk_persons": CHUNK_PERSONS,
        "row_counts": writer.row_counts,
        "invalid_counts": dict(sorted(writer.invalid_counts.items())),
        "credentials": CREDENTIALS,
        "next_ids": dict(sorted(next_ids.items())),
        "changesets": [],
    }
    if hostile_summary is not None:
        world["hostile"] = hostile_summary
    write_world(world_dir, world)
    writer.finish()  # the databases get their final names last: a world that has them is whole
    return world_dir


def build_organizations(seed: int, persons: int, clock: Clock, geo: Geography, writer: WorldWriter):
    """Teams, stations, projects and evaluations; written, and returned for the persons phase."""
    rng = rng_for(seed, "organizations")
    orgs = build_orgs(rng, max(30, persons // 50), clock, geo)
    writer.add(project_orgs(rng, orgs, clock))
    stations_built, stations = build_stations(rng, max(10, persons // 100), orgs, clock, geo)
    writer.add(stations_built)
    projects = build_projects(rng, max(60, persons // 10), orgs, clock, geo)
    writer.add(project_projects(rng, projects, stations, clock))
    evaluations_built, scores = build_evaluations(rng, orgs, clock)
    writer.add(evaluations_built)
    orgs = orgs.merge(scores, on="org_id", how="left")
    return orgs, projects, ProjectPools.from_projects(projects)


def generate_chunk(
    rng: np.random.Generator,
    n: int,
    first_seq: int,
    clock: Clock,
    geo: Geography,
    registry: IdRegistry,
    pools: ProjectPools,
    next_ids: dict[str, int],
    newcomers: bool = False,
) -> tuple[Built, pd.DataFrame, pd.DataFrame]:
    """`n` persons with their accounts, services and redemptions: rows and truth.

    `newcomers` (a change set's new registrations): every account live and active, and no
    planted invalid rows — all their rows carry one stamp, so no status may hang on order.
    """
    persons = build_persons(rng, n, first_seq, clock, geo, registry)
    accounts = allocate_accounts(rng, persons, next_ids, clock)
    services = build_services(
        rng, persons, accounts, pools, clock, next_ids, plant_invalid=not newcomers
    )
    built = services.built
    deleted = ~services.has_services & (rng.random(len(accounts)) < 0.03) & (not newcomers)
    national = (accounts["source"] == NATIONAL).to_numpy()
    built.extend(
        national_volunteers(
            rng,
            persons,
            accounts[national],
            clock,
            deleted[national],
            services.national_hours[national],
            services.last_update[national],
            all_active=newcomers,
        )
    )
    built.extend(
        provincial_volunteers(
            rng,
            persons,
            accounts[~national],
            clock,
            geo,
            deleted[~national],
            services.provincial_minutes[~national],
            services.last_update[~national],
            linked_numbers(rng, accounts)[~national],
        )
    )
    built.extend(build_redemptions(rng, accounts, services.provincial_minutes, clock, next_ids))
    if not newcomers:
        built.extend(invalid_volunteers(rng, clock, geo, registry, next_ids, len(accounts)))
    return built, persons_truth(persons, accounts, built, services.truth), services.truth


def linked_numbers(rng: np.random.Generator, accounts: pd.DataFrame) -> np.ndarray:
    """nationalVolunteerNo per account: the national number, on 40% of linked persons'
    provincial accounts (None elsewhere)."""
    national = accounts[accounts["source"] == NATIONAL]
    number_of_person = pd.Series(
        national["source_id"].to_numpy(), index=national["person"].to_numpy()
    )
    numbers = accounts["person"].map(number_of_person).to_numpy(dtype=object)
    linked = (accounts["source"].to_numpy() == PROVINCIAL) & (rng.random(len(accounts)) < 0.4)
    return np.where(linked & pd.notna(numbers), numbers, None)


def persons_truth(
    persons: pd.DataFrame, accounts: pd.DataFrame, built: Built, services: pd.DataFrame
) -> pd.DataFrame:
    """The truth rows of a chunk's persons."""
    volunteer_rows = pd.concat(
        [a for a in built.accounts if (a["entity"] == "volunteer").all()], ignore_index=True
    )
    status = person_status(volunteer_rows)
    hours = true_hours(services)
    registered = accounts.groupby("person")["reg"].min()
    ids = persons["person_id"]
    return pd.DataFrame(
        {
            "person_id": ids,
            "name": persons["name"],
            "gender": persons["gender"],
            "birth_date": persons["birth_day"].to_numpy().astype("datetime64[D]"),
            "region_code": persons["county"],
            "cert_no": persons["cert_no"],
            "phone": persons["phone"],
            "in_national": persons["presence"].isin(["both", "national"]),
            "in_provincial": persons["presence"].isin(["both", "provincial"]),
            "registered_on": (registered.reindex(range(len(persons))).to_numpy() // DAY).astype(
                "datetime64[D]"
            ),
            "status": ids.map(status),
            "true_hours": ids.map(hours).fillna(0.0).round(6),
            "namesake_of": persons["namesake_of"],
        }
    )


def orgs_truth(orgs: pd.DataFrame) -> pd.DataFrame:
    """The truth rows of the organizations (categories as labels in national code order)."""
    order = {code: i for i, code in enumerate(CATEGORY_CODES)}
    return pd.DataFrame(
        {
            "org_id": orgs["org_id"],
            "name": orgs["name"],
            "uscc": orgs["uscc"],
            "region_code": orgs["county"],
            "registration_status": orgs["registration_status"],
            "level": orgs["level"].where(orgs["in_provincial"], None),
            "is_hub": orgs["is_hub"].astype("boolean").where(orgs["in_provincial"]),
            "categories": [
                ",".join(CATEGORY_LABELS[c] for c in sorted(cs, key=order.get))
                for cs in orgs["categories"]
            ],
            "founded_on": pd.to_datetime(orgs["founded"], unit="s").dt.date,
            "member_count": orgs["member_count"],
            "credit_status": orgs["credit_status"].where(orgs["in_provincial"], None),
            "status": orgs["status"],
            "evaluation_score": orgs["evaluation_score"],
            "in_national": orgs["in_national"],
            "in_provincial": orgs["in_provincial"],
            "national_source_id": orgs["national_no"],
            "provincial_source_id": _present(orgs["provincial_id"]).astype("str"),
        }
    )


def _present(ids: pd.Series) -> pd.Series:
    """Provincial ids with the -1 of "not on the platform" as null."""
    return ids.where(ids > 0).astype("Int64")


def projects_truth(projects: pd.DataFrame) -> pd.DataFrame:
    """The truth rows of the projects, with what a change set needs to add services."""
    return pd.DataFrame(
        {
            "project_id": projects["project_id"],
            "org_id": projects["org_id"],
            "name": projects["name"],
            "category": [CATEGORY_LABELS[c] for c in projects["category"]],
            "category_code": projects["category"],
            "brand": projects["brand"],
            "region_code": projects["county"],
            "prefecture": projects["prefecture"],
            "publish": projects["publish"],  # Beijing wall-clock seconds
            "deleted": projects["deleted"],
            "in_national": projects["in_national"],
            "in_provincial": projects["in_provincial"],
            "national_source_id": projects["national_no"],
            "national_team_no": projects["national_team_no"],
            "national_region": projects["national_region"],
            "provincial_source_id": _present(projects["provincial_id"]),
            "provincial_team_id": _present(projects["provincial_team_id"]),
        }
    )
