"""Benchmark: normalizing and validating 1M volunteer rows, vectorized against row-by-row.

Generates raw volunteer-like values in memory with numpy (names with traditional characters,
romanisation, stray spaces and full-width letters; ID numbers with lower-case x, spaces,
full-width digits, 15-digit legacy and masked forms; phones with +86 and dashes; 6- and
12-digit region codes, some retired; dates in the three provincial formats; Beijing-time
registration timestamps), then times each vectorized normalizer on all rows and the
row-by-row baseline (a Python loop over the scalar forms) on the same values.

Then the validating half (bench/validation.py): the rows, with a little dirt for the
quarantine rules, go through staging's own `map_chunk` into the canonical volunteers frame;
the project's quarantine rules (`pipelines.quality.rules.evaluate`) judge all of it, and the
project's Great Expectations suite (`gx_runner.validate("volunteers", ...)`) runs over the
kept rows in their staged (Parquet-read) shape. Their row-by-row baselines apply the same
expectations and rules to one record at a time, and are checked to reach the same answer
on their sample.

Each measurement runs in a forked child so its peak memory can be read on its own: the
figure is the child's peak resident set minus the resident set at the fork (the input data
is shared with the parent and not counted).

    .venv/bin/python bench/normalize.py                       # 1M rows, baseline on 100k
    .venv/bin/python bench/normalize.py --rows 200000 --baseline-rows 200000

The baseline is timed on --baseline-rows and extrapolated linearly to --rows (marked in
the table); it does per row what the vectorized form does per column. The output is
Markdown on stdout (bench/run_all.py collects it); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import re
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import validation
from pipelines.normalize.dates import beijing_text_to_utc, parse_date
from pipelines.normalize.ids import (
    is_valid_resident_id,
    normalize_resident_id,
    normalize_resident_id_one,
    resident_id_check_char,
)
from pipelines.normalize.names import normalize_name, normalize_name_one
from pipelines.normalize.phones import MOBILE, normalize_phone, normalize_phone_one
from pipelines.normalize.regions import (
    guizhou_counties,
    normalize_region,
    normalize_region_one,
)

# ---------------------------------------------------------------------------------------
# Synthetic raw data.

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛")
SURNAMES += ["欧阳", "司马", "上官", "诸葛"]
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华国志文斌红建玲飞鹏辉宇浩婷雪琳晨欣")
# simplified -> traditional for the characters above that have a different traditional form
TRADITIONAL = {"张": "張", "刘": "劉", "陈": "陳", "杨": "楊", "黄": "黃", "赵": "趙", "吴": "吳",
               "马": "馬", "郭": "郭", "罗": "羅", "郑": "鄭", "谢": "謝", "许": "許", "韩": "韓",
               "冯": "馮", "邓": "鄧", "叶": "葉", "苏": "蘇", "吕": "呂", "卢": "盧", "钟": "鍾",
               "谭": "譚", "陆": "陸", "贾": "賈", "韦": "韋", "邹": "鄒", "伟": "偉", "丽": "麗",
               "强": "強", "军": "軍", "艳": "艷", "杰": "傑", "涛": "濤", "兰": "蘭", "刚": "剛",
               "华": "華", "国": "國", "红": "紅", "建": "建", "玲": "玲", "飞": "飛", "鹏": "鵬",
               "辉": "輝", "欧阳": "歐陽", "司马": "司馬", "诸葛": "諸葛"}
PINYIN = {"张": "zhāng", "刘": "liú", "陈": "chén", "伟": "wěi", "华": "huá", "国": "guó",
          "军": "jūn", "强": "qiáng", "丽": "lì", "杰": "jié"}

# the run's date that birth dates are judged against (the world's generation day)
TODAY = dt.date(2026, 6, 30)


def _pick(rng: np.random.Generator, items: list[str], n: int) -> np.ndarray:
    return np.asarray(items, dtype=object)[rng.integers(0, len(items), n)]


def _dirty_names(rng: np.random.Generator, n: int) -> np.ndarray:
    surname = _pick(rng, SURNAMES, n)
    given = _pick(rng, GIVEN, n) + np.where(rng.random(n) < 0.6, _pick(rng, GIVEN, n), "")
    names = surname + given
    dice = rng.random(n)
    out = names.copy()
    traditional = dice < 0.15
    out[traditional] = [
        "".join(TRADITIONAL.get(ch, ch) for ch in name) if not name[:2] in TRADITIONAL
        else TRADITIONAL[name[:2]] + name[2:]
        for name in names[traditional]
    ]
    romanised = (dice >= 0.15) & (dice < 0.20)
    out[romanised] = [
        "".join(ch + (f"({PINYIN[ch]})" if ch in PINYIN else "") for ch in name)
        for name in out[romanised]
    ]
    spaced = (dice >= 0.20) & (dice < 0.26)
    out[spaced] = [name[0] + " " + name[1:] + " " for name in out[spaced]]
    full_width = (dice >= 0.26) & (dice < 0.28)
    out[full_width] = ["\u3000" + name + "，，" for name in out[full_width]]
    return out


def _id_numbers(rng: np.random.Generator, n: int, regions: np.ndarray) -> np.ndarray:
    born = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 365 * 55, n), unit="D")
    birth_text = born.strftime("%Y%m%d").to_numpy(dtype=object)
    sequence = np.char.zfill(rng.integers(0, 1000, n).astype(str), 3).astype(object)
    first17 = regions + birth_text + sequence
    numbers = np.array([f + resident_id_check_char(f) for f in first17], dtype=object)
    dice = rng.random(n)
    out = numbers.copy()
    lower = dice < 0.10
    out[lower] = [s.lower() for s in numbers[lower]]
    legacy = (dice >= 0.10) & (dice < 0.15) & np.array([s[6:8] == "19" for s in numbers])
    out[legacy] = [s[:6] + s[8:17] for s in numbers[legacy]]
    spaced = (dice >= 0.15) & (dice < 0.20)
    out[spaced] = [s[:6] + " " + s[6:14] + " " + s[14:] for s in numbers[spaced]]
    full = (dice >= 0.20) & (dice < 0.23)
    out[full] = ["".join(chr(0xFF10 + int(c)) if c.isdigit() else "Ｘ" for c in s) for s in numbers[full]]
    masked = (dice >= 0.23) & (dice < 0.33)
    out[masked] = [s[:4] + "*" * 10 + s[-4:] for s in numbers[masked]]
    typo = (dice >= 0.33) & (dice < 0.34)
    out[typo] = [s[:10] + str((int(s[10]) + 1) % 10) + s[11:] for s in numbers[typo]]
    return out


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    second = _pick(rng, list("3456789"), n)
    rest = np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9).astype(object)
    phones = "1" + second + rest
    dice = rng.random(n)
    out = phones.copy()
    plus86 = dice < 0.10
    out[plus86] = ["+86 " + p[:3] + " " + p[3:7] + " " + p[7:] for p in phones[plus86]]
    dashed = (dice >= 0.10) & (dice < 0.15)
    out[dashed] = [p[:3] + "-" + p[3:7] + "-" + p[7:] for p in phones[dashed]]
    masked = (dice >= 0.15) & (dice < 0.25)
    out[masked] = [p[:3] + "****" + p[7:] for p in phones[masked]]
    out[(dice >= 0.25) & (dice < 0.28)] = None
    return out


def _dates(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    born = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 365 * 55, n), unit="D")
    fmt = rng.integers(0, 3, n)
    birthday = np.where(fmt == 0, born.strftime("%Y-%m-%d"),
                        np.where(fmt == 1, born.strftime("%Y/%m/%d"), born.strftime("%Y%m%d")))
    registered = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 3650, n), unit="s")
    return birthday.astype(object), registered.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)


def generate_raw_volunteers(n: int, seed: int = 20261129) -> pd.DataFrame:
    """n provincial-style raw volunteer rows, as text, dirt included."""
    rng = np.random.default_rng(seed)
    counties = guizhou_counties()["region_code"].tolist()
    county = _pick(rng, counties, n)
    retired = rng.random(n) < 0.03
    county_sent = county.copy()
    county_sent[retired] = _pick(rng, ["520114", "520221", "520222", "520522"], int(retired.sum()))
    twelve = rng.random(n) < 0.5
    tail = np.char.zfill(rng.integers(0, 10**6, n).astype(str), 6).astype(object)
    area = np.where(twelve, county_sent + tail, county_sent)
    birthday, reg_time = _dates(rng, n)
    return pd.DataFrame({
        "realName": pd.array(_dirty_names(rng, n), dtype="str"),
        "certNo": pd.array(_id_numbers(rng, n, county), dtype="str"),
        "mobile": pd.array(_phones(rng, n), dtype="str"),
        "areaCode": pd.array(area, dtype="str"),
        "birthday": pd.array(birthday, dtype="str"),
        "regTime": pd.array(reg_time, dtype="str"),
    })


# ---------------------------------------------------------------------------------------
# The two ways of normalizing.

def normalize_volunteers(raw: pd.DataFrame) -> pd.DataFrame:
    """All normalizers over a raw frame, vectorized (what staging does for these fields)."""
    ids = normalize_resident_id(raw["certNo"], today=TODAY)
    phones = normalize_phone(raw["mobile"])
    return pd.concat(
        [
            normalize_name(raw["realName"]).rename("name"),
            ids,
            phones,
            normalize_region(raw["areaCode"]).rename("region_code"),
            parse_date(raw["birthday"]).rename("stated_birth_date"),
            beijing_text_to_utc(raw["regTime"]).rename("registered_at"),
        ],
        axis=1,
    )


_MOBILE = re.compile(MOBILE.pattern)
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
_BEIJING = dt.timezone(dt.timedelta(hours=8))


def _id_row(value):
    number = normalize_resident_id_one(value)
    valid = number is not None and is_valid_resident_id(number, today=TODAY)
    birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14])) if valid else None
    gender = ("M" if int(number[16]) % 2 else "F") if valid else None
    return number, valid, birth, gender


def _phone_row(value):
    phone = normalize_phone_one(value)
    return phone, phone is not None and _MOBILE.fullmatch(phone) is not None


def _date_row(value):
    if not isinstance(value, str):
        return None
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _beijing_row(value):
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=_BEIJING).astimezone(dt.UTC)
    except (TypeError, ValueError):
        return None


def _loop(function: Callable, values: pd.Series) -> list:
    return [function(v) for v in values.tolist()]


STEPS: list[tuple[str, str, Callable[[pd.DataFrame], object], Callable[[pd.DataFrame], object]]] = [
    ("names", "realName", lambda f: normalize_name(f["realName"]), lambda f: _loop(normalize_name_one, f["realName"])),
    ("resident ID numbers", "certNo", lambda f: normalize_resident_id(f["certNo"], today=TODAY), lambda f: _loop(_id_row, f["certNo"])),
    ("phones", "mobile", lambda f: normalize_phone(f["mobile"]), lambda f: _loop(_phone_row, f["mobile"])),
    ("region codes", "areaCode", lambda f: normalize_region(f["areaCode"]), lambda f: _loop(normalize_region_one, f["areaCode"])),
    ("dates (3 formats)", "birthday", lambda f: parse_date(f["birthday"]), lambda f: _loop(_date_row, f["birthday"])),
    ("Beijing text -> UTC", "regTime", lambda f: beijing_text_to_utc(f["regTime"]), lambda f: _loop(_beijing_row, f["regTime"])),
]


# ---------------------------------------------------------------------------------------
# Measuring.

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(function: Callable[[pd.DataFrame], object], frame: pd.DataFrame) -> tuple[float, int]:
    """(seconds, peak extra memory in bytes) of function(frame), run in a forked child.

    The child resets its peak-RSS mark (/proc/self/clear_refs, "5") so the peak is that of
    the measured call alone; the input, shared with the parent, is in the starting RSS."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
        except OSError:
            pass
        rss_before = _status_kib("VmRSS")
        started = time.perf_counter()
        function(frame)
        elapsed = time.perf_counter() - started
        peak = (_status_kib("VmHWM") - rss_before) * 1024
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump((elapsed, peak), pipe)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        elapsed, peak = pickle.load(pipe)
    os.waitpid(pid, 0)
    return elapsed, max(peak, 0)


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def _row(label: str, vector: tuple[float, int], baseline: tuple[float, int], note: str) -> str:
    (vector_seconds, vector_peak), (row_seconds, row_peak) = vector, baseline
    return (f"| {label} | {vector_seconds:.2f} s | {_mib(vector_peak)} | {row_seconds:.2f} s{note} | "
            f"{_mib(row_peak)} | {row_seconds / vector_seconds:.1f}× |")


def _scaled_note(full_rows: int, sample_rows: int) -> tuple[float, str]:
    scale = full_rows / sample_rows
    return scale, "" if scale == 1 else f" (timed on {sample_rows:,}, ×{scale:.3g})"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(rows: int, baseline_rows: int, seed: int) -> str:
    started = time.perf_counter()
    frame = generate_raw_volunteers(rows, seed)
    generated_in = time.perf_counter() - started
    sample = frame.iloc[:baseline_rows]
    scale, note = _scaled_note(rows, len(sample))

    lines = [
        (
            f"Normalizing and validating {rows:,} synthetic volunteer rows (generated in "
            f"{generated_in:.1f} s; {frame['realName'].nunique():,} distinct names). Python "
            f"{sys.version.split()[0]}, pandas {pd.__version__}, {os.cpu_count()} CPUs."
        ),
        "",
        "| step | vectorized | peak memory | row-by-row baseline | peak memory | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total_row = 0.0
    for label, _column, vectorized, row_by_row in STEPS:
        _progress(f"normalizing: {label}")
        vector = measure(vectorized, frame)
        row_seconds, row_peak = measure(row_by_row, sample)
        total_row += row_seconds * scale
        lines.append(_row(label, vector, (row_seconds * scale, row_peak), note))
    all_seconds, all_peak = measure(normalize_volunteers, frame)
    lines.append(
        f"| **normalizing: all of them, one frame** | **{all_seconds:.2f} s** | {_mib(all_peak)} | "
        f"{total_row:.2f} s (sum) | | {total_row / all_seconds:.1f}× |"
    )

    # -- the validating half: staging's canonical frame, the quarantine rules, the GX suite
    _progress("validating: building the canonical and staged frames (staging's map_chunk)")
    extract = validation.provincial_extract(frame, seed)
    volunteers = validation.staged_volunteers(extract)
    del extract
    canonical, staged, inputs = volunteers.canonical, volunteers.staged, volunteers.inputs
    canonical_sample = canonical.iloc[:baseline_rows]
    staged_sample = staged.iloc[:baseline_rows]
    validation.gx_runner.validate(validation.TABLE, staged_sample.iloc[:1000])  # GX context built once, untimed

    _progress("validating: quarantine rules")
    rules_scale, rules_note = _scaled_note(len(canonical), len(canonical_sample))
    rules = measure(lambda f: validation.evaluate(f, inputs), canonical)
    rules_row = measure(lambda f: validation.rules_row_by_row(f, validation.sample_inputs(inputs, f.index)),
                        canonical_sample)
    rules_row = (rules_row[0] * rules_scale, rules_row[1])
    lines.append(_row(f"quarantine rules (`rules.evaluate`, {len(canonical):,} rows)", rules, rules_row, rules_note))

    _progress("validating: Great Expectations suite")
    gx_scale, gx_note = _scaled_note(len(staged), len(staged_sample))
    suite_size = len(validation.gx_runner.load_suite_json(validation.TABLE)["expectations"])
    gx = measure(lambda f: validation.gx_runner.validate(validation.TABLE, f), staged)
    gx_row = measure(validation.gx_row_by_row, staged_sample)
    gx_row = (gx_row[0] * gx_scale, gx_row[1])
    lines.append(_row(f"GX suite `volunteers` ({suite_size} expectations, {len(staged):,} kept rows)",
                      gx, gx_row, gx_note))
    validate_seconds, validate_row = rules[0] + gx[0], rules_row[0] + gx_row[0]
    lines.append(
        f"| **validating: rules + GX** | **{validate_seconds:.2f} s** | {_mib(max(rules[1], gx[1]))} | "
        f"{validate_row:.2f} s (sum) | | {validate_row / validate_seconds:.1f}× |"
    )
    both, both_row = all_seconds + validate_seconds, total_row + validate_row
    lines.append(
        f"| **normalizing and validating** | **{both:.2f} s** | {_mib(max(all_peak, rules[1], gx[1]))} | "
        f"{both_row:.2f} s (sum) | | {both_row / both:.1f}× |"
    )

    _progress("validating: checking the baselines against the project's validators")
    problems = validation.baseline_agrees(staged_sample, canonical_sample, inputs)
    quarantined = ", ".join(f"{rule} {count:,}" for rule, count in sorted(volunteers.rule_counts.items()))
    lines += [
        "",
        (
            f"Process peak resident set: {_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)} "
            "(the generated input and the canonical frames included). Validation input: staging's "
            f"`map_chunk` built the canonical frame in {volunteers.map_seconds:.1f} s; quarantined: "
            f"{quarantined or 'none'}; GX ran on the {len(staged):,} kept rows."
        ),
        "",
        "Row-by-row baselines agree with the project's validators on their "
        f"{len(canonical_sample):,}-row sample: " + ("yes" if not problems else "NO: " + "; ".join(problems)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args(argv)
    print(run(args.rows, min(args.baseline_rows, args.rows), args.seed))


if __name__ == "__main__":
    main()
