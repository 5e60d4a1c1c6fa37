"""A small, consistent set of resolved and staged files, shaped as docs/DESIGN.md says.

What the warehouse tests publish when they do not run the whole chain: a few hundred
persons with clear names and valid resident ID numbers (hashed the way staging does, their
last four sealed as staging seals them), their
source accounts, organizations, projects (some in brand programmes), services, evaluations,
stations (some deleted), redemptions and quarantined rows. `World` keeps the clear values so
the privacy tests can look for them in the warehouse.

Nothing here is computed with the code under test: ID numbers get their GB 11643 check
character, `cert_hash` the contract's HMAC, the last four their seal and projects the documented key from
tests/reference.py (stdlib hmac/hashlib, weights typed from the standard), and the counties
are the literal GB/T 2260 list there. The project key is a join key between two inputs (the
resolver writes it into services, the warehouse derives it from staged projects); the tests
assert the join, not values derived from it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tests.reference import GUIZHOU_COUNTIES, documented_project_key, id_hash, resident_id, sealed_id_suffix

FAMILY = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄", "吴", "周", "欧阳", "司马", "诸葛", "上官"]
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "小明", "建华", "晓燕", "志强"]
CATEGORIES = ["社区服务", "扶贫减贫", "支教助学", "卫生健康", "生态环保", "助老助残", "应急救援"]
BRANDS = ["三关爱", "暖冬行动", "西部计划", "青清河", "夜校", None, None, None]
HOSTS = ["社区", "学校", "医院", "图书馆", "村委会"]
EVALUATORS = ["registration_authority", "funder", "beneficiary", "self", "third_party"]


@dataclass
class World:
    data_dir: Path
    names: list[str] = field(default_factory=list)  # clear full names of the persons
    id_numbers: list[str] = field(default_factory=list)  # clear 18-char resident IDs
    phones: list[str] = field(default_factory=list)  # clear mobiles (staged only as hashes)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # "resolved/x", "staged/x"


def _resident_id(region: str, birth: dt.date, sequence: int) -> str:
    return resident_id(f"{region}{birth:%Y%m%d}{sequence:03d}")


def _utc(day: dt.date, hour: int = 2) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(day.year, day.month, day.day, hour), tz="UTC")


def make_world(
    data_dir: Path,
    *,
    persons: int = 300,
    organizations: int = 40,
    services: int = 2500,
    seed: int = 7,
    key: str = "test-pii-key",
    org_overrides: dict[int, dict] | None = None,
) -> World:
    """Write the resolved and staged files of a small world under `data_dir` and return it.

    `org_overrides` replaces fields of organization i (0-based) in both resolved and staged
    files, to simulate a change between two syncs.
    """
    rng = np.random.default_rng(seed)
    counties = list(GUIZHOU_COUNTIES)  # the 88 current counties, in code order
    # leave a few counties without people, organizations or stations
    used_counties = counties[: len(counties) - 8]
    world = World(data_dir=data_dir)

    # --- persons and their accounts -------------------------------------------------------
    volunteer_rows, vmap_rows, staged_volunteers = [], [], []
    for i in range(persons):
        family = FAMILY[i % len(FAMILY)]
        name = family + GIVEN[(i * 7 + i // len(FAMILY)) % len(GIVEN)] + ("" if i % 3 else "文")
        region = used_counties[int(rng.integers(len(used_counties)))]
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 58)))
        cert = _resident_id(region, birth, 100 + i % 900)
        gender = "M" if int(cert[16]) % 2 else "F"
        phone = f"13{int(rng.integers(0, 10))}{int(rng.integers(10_000_000, 99_999_999)):08d}"
        masked_only = i % 10 == 0  # a tenth came masked: no valid number known, no id_hash
        status = "deleted" if i % 50 == 0 else ("frozen" if i % 37 == 0 else "active")
        registered = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 6)))
        in_national = i % 4 != 3
        in_provincial = i % 4 != 0
        key_v = f"V{i:06d}"
        world.names.append(name)
        world.id_numbers.append(cert)
        world.phones.append(phone)
        volunteer_rows.append(
            {
                "volunteer_key": key_v,
                "cert_hash": None if masked_only else id_hash(cert, key),
                "cert_prefix4": cert[:4],
                "cert_suffix4": sealed_id_suffix(cert[-4:], key),  # as resolution writes it
                "name": name,
                "gender": gender,
                "birth_date": birth,
                "birth_year": birth.year,
                "region_code": region if i % 60 else None,
                "registered_on": registered,
                "in_national": in_national,
                "in_provincial": in_provincial,
                "status": status,
            }
        )
        for source, present in (("national", in_national), ("provincial", in_provincial)):
            if not present:
                continue
            source_id = f"52{i:010d}" if source == "national" else str(10_000 + i)
            vmap_rows.append(
                {
                    "source": source,
                    "source_id": source_id,
                    "volunteer_key": key_v,
                    "match_method": "single_account" if not (in_national and in_provincial) else "same_cert",
                    "match_probability": 1.0,
                }
            )
            staged_volunteers.append(
                {
                    "source": source,
                    "source_id": source_id,
                    "updated_at": _utc(registered),
                    "is_deleted": status == "deleted",
                    "name": name,
                    "cert_hash": None if masked_only else id_hash(cert, key),
                    "region_code": region,
                    "status": "active",
                    "source_star_level": int(rng.integers(0, 3)),
                }
            )

    # --- organizations --------------------------------------------------------------------
    org_rows, omap_rows, staged_orgs = [], [], []
    for j in range(organizations):
        region = used_counties[(j * 5) % len(used_counties)]
        org = {
            "org_key": f"O{j:05d}",
            "uscc": None if j % 3 else f"52520100MJ{j:07d}X"[:18],
            "name": f"贵州第{j}志愿服务队",
            "registration_status": ["registered", "filed", "unregistered"][j % 3],
            "level": ["省级", "市级", "县级", "乡镇", "社区", "单位"][j % 6],
            "is_hub": j % 7 == 0,
            "region_code": region,
            "categories": ",".join(sorted({CATEGORIES[j % 7], CATEGORIES[(j * 3) % 7]}, key=CATEGORIES.index)),
            "founded_on": dt.date(2012 + j % 12, 1 + j % 12, 1),
            "member_count": 10 + j,
            "status": "exited" if j % 13 == 5 else ("deleted" if j == 39 else "active"),
            "credit_status": ["良好", "良好", "警示", "失信", None][j % 5],
            "in_national": j % 2 == 0,
            "in_provincial": True,
            "updated_at": _utc(dt.date(2024, 1 + j % 12, 10)),
        }
        org.update((org_overrides or {}).get(j, {}))
        org_rows.append({k: v for k, v in org.items() if k != "updated_at"})
        for source in ("national", "provincial") if org["in_national"] else ("provincial",):
            source_id = f"T52{j:06d}" if source == "national" else str(500 + j)
            omap_rows.append({"source": source, "source_id": source_id, "org_key": org["org_key"], "match_method": "same_uscc"})
            staged_orgs.append(
                {
                    "source": source,
                    "source_id": source_id,
                    "updated_at": org["updated_at"],
                    "is_deleted": org["status"] == "deleted",
                    "name": org["name"],
                    "region_code": region,
                    "status": org["status"],
                    "credit_status": org["credit_status"],
                }
            )
    org_sources = pd.DataFrame(omap_rows)

    # --- projects -------------------------------------------------------------------------
    project_rows = []
    for p in range(60):
        source = "national" if p % 2 == 0 else "provincial"
        owner = org_sources.loc[org_sources["source"] == source].iloc[p % int((org_sources["source"] == source).sum())]
        start = dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900)))
        project_rows.append(
            {
                "source": source,
                "source_id": f"X{p:05d}" if source == "national" else str(9000 + p),
                "updated_at": _utc(start),
                "is_deleted": p == 59,
                "name": f"项目{p}",
                "org_source_id": owner["source_id"],
                "category": CATEGORIES[p % 7],
                "brand": BRANDS[p % len(BRANDS)] if p % 11 else "脱贫攻坚夜校",
                "region_code": used_counties[p % len(used_counties)],
                "start_at": _utc(start, 1),
                "end_at": _utc(start + dt.timedelta(days=30), 1),
                "published_on": start,
                "status": "2",
            }
        )
    projects = pd.DataFrame(project_rows)
    project_org = dict(zip(zip(org_sources["source"], org_sources["source_id"]), org_sources["org_key"]))
    # the documented key rule (what the resolver writes into services), once per project
    project_keys = [documented_project_key(s, i) for s, i in zip(projects["source"], projects["source_id"])]

    # --- services -------------------------------------------------------------------------
    service_rows = []
    active_keys = [row["volunteer_key"] for row in volunteer_rows]
    for s in range(services):
        project_index = int(rng.integers(0, 59))
        project = project_rows[project_index]
        source = ["national", "provincial", "both"][s % 3]
        project_source = project["source"]
        # a few heavy volunteers reach the star thresholds
        heavy = s % 50 == 0
        hours = float(rng.integers(1, 16)) / 2 if not heavy else 24.0
        service_rows.append(
            {
                "service_key": f"S{s:07d}",
                "volunteer_key": None if s % 97 == 0 else active_keys[(s * 13) % 40 if heavy else int(rng.integers(0, persons))],
                "org_key": project_org[(project_source, project["org_source_id"])],
                "project_key": project_keys[project_index],
                "project_source": project_source,
                "project_source_id": project["source_id"],
                "service_date": dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1000))),
                "hours": hours if source != "provincial" else round(int(hours * 60 + 5) / 60, 6),
                "category": project["category"],
                "source": source,
                "national_source_id": None if source == "provincial" else f"R{s:08d}",
                "provincial_source_id": None if source == "national" else str(70_000 + s),
            }
        )
    # push a few persons over the high star thresholds
    for extra, (person, total) in enumerate([(1, 1600.0), (2, 1000.0), (3, 650.0), (4, 320.0), (5, 99.5)]):
        for k in range(int(total // 20)):
            service_rows.append(
                {
                    "service_key": f"SX{extra}{k:05d}",
                    "volunteer_key": f"V{person:06d}",
                    "org_key": "O00001",
                    "project_key": None,
                    "project_source": None,
                    "project_source_id": None,
                    "service_date": dt.date(2022, 1, 1) + dt.timedelta(days=k),
                    "hours": 20.0,
                    "category": "社区服务",
                    "source": "national",
                    "national_source_id": f"RX{extra}{k:05d}",
                    "provincial_source_id": None,
                }
            )

    # --- evaluations, stations, redemptions, quarantine --------------------------------------
    evaluation_rows = []
    for j in range(0, organizations, 2):
        source_id = f"T52{j:06d}"
        for period in ("2023", "2024"):
            for e, evaluator in enumerate(EVALUATORS[: 2 + j % 4]):
                for repeat in range(1 + (e % 2)):
                    evaluation_rows.append(
                        {
                            "source": "national",
                            "source_id": f"E{j:03d}{period}{e}{repeat}",
                            "updated_at": _utc(dt.date(int(period), 12, 1)),
                            "is_deleted": False,
                            "org_source_id": source_id,
                            "evaluator": evaluator,
                            "score": float(60 + (j * 3 + e * 7 + repeat * 5) % 40),
                            "period": period,
                        }
                    )
    station_rows = []
    for k in range(30):
        org = omap_rows[k % len(omap_rows)]
        station_rows.append(
            {
                "source": "provincial",
                "source_id": str(300 + k),
                "updated_at": _utc(dt.date(2024, 3, 1)),
                "is_deleted": k % 10 == 9,
                "name": f"新时代文明实践志愿服务站{k}",
                "station_type": ["站", "点", "岗"][k % 3],
                "host_type": HOSTS[k % len(HOSTS)],
                "region_code": used_counties[(k * 3) % 20],
                "org_source_id": org["source_id"] if org["source"] == "provincial" else None,
                "opened_on": dt.date(2021, 1 + k % 12, 1),
            }
        )
    redemption_rows = []
    provincial_accounts = [row for row in vmap_rows if row["source"] == "provincial"]
    for r in range(80):
        account = provincial_accounts[(r * 7) % len(provincial_accounts)]
        redemption_rows.append(
            {
                "source": "provincial",
                "source_id": str(800 + r),
                "updated_at": _utc(dt.date(2025, 5, 1)),
                "is_deleted": r % 20 == 19,
                "volunteer_source_id": account["source_id"],
                "hours": (30 + r % 4 * 15) / 60,
                "purpose": ["养老服务", "家政服务", "体检"][r % 3],
                "redeemed_at": _utc(dt.date(2025, 1 + r % 12, 3), 20),
            }
        )
    quarantine_rows = []
    for q in range(12):
        cert = world.id_numbers[q]
        masked = {
            "id": str(40_000 + q),
            "realName": world.names[q][0] + "*" * (len(world.names[q]) - 1),
            "certNo": cert[:4] + "*" * 10 + cert[-4:],
            "areaCode": "530102",
        }
        quarantine_rows.append(
            {
                "source": "provincial",
                "entity": "volunteer",
                "source_id": str(40_000 + q),
                "rule": "region_outside_province",
                "detail": "region 530102 is not in Guizhou",
                "record": json.dumps(masked, ensure_ascii=False),
                "first_seen_at": _utc(dt.date(2026, 1, 5)),
                "last_seen_at": _utc(dt.date(2026, 2, 5)),
            }
        )

    frames = {
        "resolved/volunteers": pd.DataFrame(volunteer_rows),
        "resolved/volunteer_source_map": pd.DataFrame(vmap_rows),
        "resolved/organizations": pd.DataFrame(org_rows),
        "resolved/organization_source_map": org_sources,
        "resolved/services": pd.DataFrame(service_rows),
        "staged/volunteers": pd.DataFrame(staged_volunteers),
        "staged/organizations": pd.DataFrame(staged_orgs),
        "staged/projects": projects,
        "staged/evaluations": pd.DataFrame(evaluation_rows),
        "staged/stations": pd.DataFrame(station_rows),
        "staged/redemptions": pd.DataFrame(redemption_rows),
        "staged/quarantine": pd.DataFrame(quarantine_rows),
    }
    for name, frame in frames.items():
        path = data_dir / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    world.frames = frames
    return world
