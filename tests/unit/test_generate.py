"""The synthetic landing data generator: shape, determinism, scaling and the joins it is made for."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import duckdb  # noqa: TID251  (tests may query the generated files directly)
import pytest

from stedi.generate import FIRST_NAMES, LAST_NAMES, GenerateReport, generate, generate_batch

SOURCES = ("customer", "accelerometer", "step_trainer")
# Field order and JSON types of the real landing files.
SCHEMAS: dict[str, dict[str, tuple[type | None, ...]]] = {
    "customer": {
        "customerName": (str,), "email": (str,), "phone": (str,), "birthDay": (str,),
        "serialNumber": (str,), "registrationDate": (int,), "lastUpdateDate": (int,),
        "shareWithResearchAsOfDate": (int, None), "shareWithPublicAsOfDate": (int, None),
        "shareWithFriendsAsOfDate": (int, None),
    },
    "accelerometer": {"user": (str,), "timestamp": (int,), "x": (float,), "y": (float,), "z": (float,)},
    "step_trainer": {"sensorReadingTime": (int,), "serialNumber": (str,), "distanceFromObject": (int,)},
}
# The real data at scale 1.
REAL = {"customers": 956, "accelerometer": 81_273, "step_trainer": 28_680}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
EMAIL = re.compile(r"^[A-Z][a-z]+\.[A-Z][a-z]+[0-9]*@test\.com$")


@pytest.fixture(scope="module")
def scale1(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerateReport, list[str]]:
    messages: list[str] = []
    report = generate(tmp_path_factory.mktemp("scale1"), scale=1.0, seed=0, progress=messages.append)
    return report, messages


@pytest.fixture(scope="module")
def records(scale1: tuple[GenerateReport, list[str]]) -> dict[str, list[dict[str, object]]]:
    report, _ = scale1
    return {src: [json.loads(line) for f in _files(report.out, src) for line in f.read_text().splitlines()]
            for src in SOURCES}


@pytest.fixture(scope="module")
def db(scale1: tuple[GenerateReport, list[str]]) -> duckdb.DuckDBPyConnection:
    out = scale1[0].out
    con = duckdb.connect()
    for src in SOURCES:
        con.execute(f"create view {src} as select * from "
                    f"read_json('{out}/{src}/landing/*.json', format='newline_delimited')")
    # The current record of each customer is the one with the latest lastUpdateDate.
    con.execute("create view current_customer as select * from customer "
                "qualify row_number() over (partition by email order by lastUpdateDate desc) = 1")
    con.execute("create view consenting as select * from current_customer "
                "where shareWithResearchAsOfDate is not null")
    return con


def _files(out: Path, source: str) -> list[Path]:
    return sorted((out / source / "landing").glob("*"))


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.json"))}


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_counts_are_near_the_real_data(scale1: tuple[GenerateReport, list[str]]) -> None:
    report, _ = scale1
    assert report.customers == REAL["customers"]
    assert report.accelerometer_records == pytest.approx(REAL["accelerometer"], rel=0.1)
    assert report.step_trainer_records == pytest.approx(REAL["step_trainer"], rel=0.1)
    assert report.customers < report.customer_records <= report.customers * 1.05
    files = {src: _files(report.out, src) for src in SOURCES}
    assert report.files == sum(len(f) for f in files.values())
    assert len(files["accelerometer"]) >= 5 and len(files["step_trainer"]) >= 2
    for src, paths in files.items():
        assert all(re.fullmatch(rf"{src}-\d{{13}}\.json", p.name) for p in paths)
        lines = sum(p.read_bytes().count(b"\n") for p in paths)
        expected = {"customer": report.customer_records, "accelerometer": report.accelerometer_records,
                    "step_trainer": report.step_trainer_records}[src]
        assert lines == expected
    assert report.seconds > 0


def test_progress_reports_each_file(scale1: tuple[GenerateReport, list[str]]) -> None:
    report, messages = scale1
    for src in SOURCES:
        for path in _files(report.out, src):
            assert any(path.name in m for m in messages)


def test_records_have_exactly_the_schema(scale1: tuple[GenerateReport, list[str]],
                                         records: dict[str, list[dict[str, object]]]) -> None:
    for src, rows in records.items():
        schema = SCHEMAS[src]
        for row in rows:
            assert list(row) == list(schema), row  # same fields, same order
            for key, value in row.items():
                allowed = schema[key]
                assert (value is None and None in allowed) or (
                    type(value) in allowed), f"{src}.{key}={value!r}"
    raw = b"".join(p.read_bytes() for p in _files(scale1[0].out, "accelerometer"))
    assert b"\r" not in raw and raw.endswith(b"\n")
    assert re.search(rb'"x":-?\d\.\d,"y":-?\d\.\d,"z":-?\d\.\d\}\n', raw)  # floats as 1.0 / -1.0
    for row in records["customer"]:
        assert EMAIL.match(str(row["email"])) and UUID4.match(str(row["serialNumber"]))
        assert re.fullmatch(r"\d{4}-01-01", str(row["birthDay"])) and row["phone"] == "8015551212"


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", scale=0.3, seed=7)
    b = generate(tmp_path / "b", scale=0.3, seed=7)
    c = generate(tmp_path / "c", scale=0.3, seed=8)
    assert _tree(a.out) == _tree(b.out)
    assert a.customer_records == b.customer_records and a.accelerometer_records == b.accelerometer_records
    other = _tree(c.out)
    assert all(other[name] != data for name, data in _tree(a.out).items() if name in other)


def test_counts_scale_linearly(tmp_path: Path, scale1: tuple[GenerateReport, list[str]]) -> None:
    full = scale1[0]
    tenth = generate(tmp_path / "tenth", scale=0.1, seed=0)
    assert tenth.customers == round(full.customers / 10)
    assert tenth.accelerometer_records == pytest.approx(full.accelerometer_records / 10, rel=0.05)
    assert tenth.step_trainer_records == pytest.approx(full.step_trainer_records / 10, rel=0.05)
    tiny = generate(tmp_path / "tiny", scale=0.01, seed=0)
    assert 5 <= tiny.customers <= 15
    assert tiny.accelerometer_records > 0 and tiny.step_trainer_records == 30 * tiny.customers


def test_rerun_replaces_the_files_of_the_last_run(tmp_path: Path) -> None:
    generate(tmp_path, scale=0.3, seed=0)
    small = generate(tmp_path, scale=0.01, seed=0)
    assert small.files == len(list(tmp_path.rglob("*.json")))
    assert _tree(tmp_path) == _tree(generate(tmp_path / "fresh", scale=0.01, seed=0).out)


@pytest.mark.parametrize("scale", [0, -1, -0.5, math.nan, math.inf])
def test_bad_scale_is_refused(tmp_path: Path, scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale=scale)
    assert not list(tmp_path.rglob("*.json"))


def test_name_pools_have_no_repeats() -> None:
    # Emails are First.Last@test.com built from distinct pool combinations; a repeat would clash.
    assert len(set(FIRST_NAMES)) == len(FIRST_NAMES) and len(set(LAST_NAMES)) == len(LAST_NAMES)


def test_customers_are_unique_and_about_half_consent(db: duckdb.DuckDBPyConnection) -> None:
    n = _one(db, "select count(*) from current_customer")
    assert _one(db, "select count(distinct email) from current_customer") == n
    assert _one(db, "select count(distinct serialNumber) from current_customer") == n
    assert 0.4 < _one(db, "select count(*) from consenting") / n < 0.6


def test_older_versions_are_older(db: duckdb.DuckDBPyConnection) -> None:
    older = db.execute("""
        select c.email, o.lastUpdateDate, c.lastUpdateDate,
               o.shareWithResearchAsOfDate is null, c.shareWithResearchAsOfDate is null
        from customer o join current_customer c
          on o.email = c.email and o.lastUpdateDate <> c.lastUpdateDate""").fetchall()
    n = _one(db, "select count(*) from current_customer")
    assert 0.01 * n <= len(older) <= 0.03 * n
    assert all(old < cur for _, old, cur, _, _ in older)
    assert any(old_null != cur_null for *_, old_null, cur_null in older)  # consent changed
    # Never two records of one email with the same lastUpdateDate.
    assert _one(db, "select count(*) from (select email, lastUpdateDate from customer group by all "
                    "having count(*) > 1)") == 0


def test_devices_and_phones_report_at_the_same_timestamps(db: duckdb.DuckDBPyConnection) -> None:
    # Per step trainer reading: how many of the owner's phone readings share its timestamp.
    matches = Counter(n for (n,) in db.execute("""
        select count(a."user")
        from step_trainer s
        join current_customer c on c.serialNumber = s.serialNumber
        left join accelerometer a on a."user" = c.email and a."timestamp" = s.sensorReadingTime
        group by s.serialNumber, s.sensorReadingTime""").fetchall())
    assert set(matches) <= {1, 2, 3, 4}
    assert matches.most_common(1)[0][0] == 3
    # Every consenting customer gets ML join rows.
    assert _one(db, """
        select count(*) from consenting c
        where not exists (select 1 from step_trainer s join accelerometer a
                          on a."user" = c.email and a."timestamp" = s.sensorReadingTime
                          where s.serialNumber = c.serialNumber)""") == 0
    per_customer = _one(db, 'select avg(n) from (select count(*) n from accelerometer group by "user")')
    assert 75 < per_customer < 95  # real: 85


def test_some_readings_predate_consent(db: duckdb.DuckDBPyConnection) -> None:
    before, total = db.execute("""
        select count(*) filter (where a."timestamp" < c.shareWithResearchAsOfDate), count(*)
        from accelerometer a join consenting c on a."user" = c.email""").fetchone() or (0, 0)
    assert 0.1 < before / total < 0.35  # real: 8,956 of 40,981


def test_some_timestamps_are_shared_between_customers(db: duckdb.DuckDBPyConnection) -> None:
    shared = _one(db, """select count(*) from (select "timestamp" from accelerometer
                         group by 1 having count(distinct "user") > 1)""")
    distinct = _one(db, 'select count(distinct "timestamp") from accelerometer')
    assert 0.03 < shared / distinct < 0.08  # real: 1,481 of 27,110


def test_the_per_customer_join_is_stricter_than_a_join_on_time(db: duckdb.DuckDBPyConnection) -> None:
    # machine_learning_curated pairs a device reading with its owner's phone readings at that time.
    ml = _one(db, """
        select count(*) from step_trainer s
        join consenting c on s.serialNumber = c.serialNumber
        join accelerometer a on a."user" = c.email and a."timestamp" = s.sensorReadingTime""")
    on_time = _one(db, """
        select count(*) from step_trainer s
        join consenting c on s.serialNumber = c.serialNumber
        join (select * from accelerometer where "user" in (select email from consenting)) a
          on a."timestamp" = s.sensorReadingTime""")
    readings = _one(db, 'select count(*) from accelerometer a join consenting c on a."user" = c.email')
    assert ml == readings  # every phone reading of a consenting customer has its device reading
    assert readings < on_time < readings * 1.15  # real: 40,981 vs 43,681


# -- the next batch -------------------------------------------------------------------------------------
Rows = dict[str, list[dict[str, object]]]


def _rows(out: Path) -> Rows:
    return {src: [json.loads(line) for f in _files(out, src) for line in f.read_text().splitlines()]
            for src in SOURCES}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Rows, GenerateReport, Rows]:
    base = generate(tmp_path_factory.mktemp("base"), scale=0.3, seed=0)
    report = generate_batch(base.out, tmp_path_factory.mktemp("batch"), share=0.05, changed=0.5, seed=1)
    return _rows(base.out), report, _rows(report.out)


def _latest(customers: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    latest: dict[str, dict[str, object]] = {}
    for row in customers:
        email = str(row["email"])
        if email not in latest or int(str(row["lastUpdateDate"])) > int(str(latest[email]["lastUpdateDate"])):
            latest[email] = row
    return latest


def test_batch_brings_new_customers_and_changes_a_few(batch: tuple[Rows, GenerateReport, Rows]) -> None:
    base, report, new = batch
    in_base = _latest(base["customer"])
    emails = {str(r["email"]) for r in new["customer"]}
    fresh, changed = emails - set(in_base), emails & set(in_base)
    assert report.customers == len(fresh) == round(0.05 * len(in_base))
    assert report.changed_customers == len(changed) == round(0.5 * report.customers)
    assert report.customer_records == len(new["customer"])
    assert report.accelerometer_records == len(new["accelerometer"])
    assert report.step_trainer_records == len(new["step_trainer"])
    assert all(EMAIL.match(e.replace(".b", "", 1)) for e in fresh)  # First.Last.b<n>@test.com
    last_registration = max(int(str(r["registrationDate"])) for r in base["customer"])
    assert all(int(str(r["registrationDate"])) > last_registration
               for r in new["customer"] if r["email"] in fresh)
    for row in new["customer"]:  # the shape generate makes
        assert list(row) == list(SCHEMAS["customer"])


def test_changed_customers_get_a_newer_record_with_consent_toggled(
        batch: tuple[Rows, GenerateReport, Rows]) -> None:
    base, _, new = batch
    in_base = _latest(base["customer"])
    changed = [r for r in new["customer"] if r["email"] in in_base]
    assert changed and len({r["email"] for r in changed}) == len(changed)
    newest_in_base = max(int(str(r["lastUpdateDate"])) for r in base["customer"])
    for row in changed:
        old = in_base[str(row["email"])]
        assert int(str(row["lastUpdateDate"])) > newest_in_base
        if old["shareWithResearchAsOfDate"] is None:
            assert row["shareWithResearchAsOfDate"] == row["lastUpdateDate"]
        else:
            assert row["shareWithResearchAsOfDate"] is None
        kept = set(row) - {"lastUpdateDate", "shareWithResearchAsOfDate"}
        assert {k: row[k] for k in kept} == {k: old[k] for k in kept}


def test_batch_readings_belong_to_the_new_customers(batch: tuple[Rows, GenerateReport, Rows]) -> None:
    base, _, new = batch
    in_base = set(_latest(base["customer"]))
    fresh = {str(r["email"]): str(r["serialNumber"]) for r in new["customer"] if r["email"] not in in_base}
    assert {r["user"] for r in new["accelerometer"]} == set(fresh)
    assert {r["serialNumber"] for r in new["step_trainer"]} == set(fresh.values())
    assert len(new["step_trainer"]) == 30 * len(fresh)
    base_serials = {r["serialNumber"] for r in base["customer"]}
    assert not base_serials & set(fresh.values())
    for src in ("accelerometer", "step_trainer"):
        assert all(list(row) == list(SCHEMAS[src]) for row in new[src])


def test_batch_file_names_follow_the_base(tmp_path: Path) -> None:
    base = generate(tmp_path / "base", scale=0.05, seed=0)
    first = generate_batch(base.out, tmp_path / "b1", share=0.001, changed=0)  # at least 1 and 1
    assert first.customers == 1 and first.changed_customers == 1
    base_names = {p.name for p in base.out.rglob("*.json")}
    highest = max(int(n.rsplit("-", 1)[1].removesuffix(".json")) for n in base_names)
    names = [p.name for p in first.out.rglob("*.json")]
    assert len(names) == first.files == 3 and not base_names & set(names)
    assert all(int(n.rsplit("-", 1)[1].removesuffix(".json")) > highest for n in names)
    with pytest.raises(ValueError, match="another folder"):
        generate_batch(base.out, base.out)
    with pytest.raises(ValueError, match="share"):
        generate_batch(base.out, tmp_path / "bad", share=-0.1)
    with pytest.raises(ValueError, match="generate the base first"):
        generate_batch(tmp_path / "empty", tmp_path / "bad")


def test_batch_is_deterministic(tmp_path: Path) -> None:
    base = generate(tmp_path / "base", scale=0.1, seed=0)
    a = generate_batch(base.out, tmp_path / "a", share=0.1, seed=3)
    b = generate_batch(base.out, tmp_path / "b", share=0.1, seed=3)
    c = generate_batch(base.out, tmp_path / "c", share=0.1, seed=4)
    assert _tree(a.out) == _tree(b.out)
    other = _tree(c.out)
    assert all(other[name] != data for name, data in _tree(a.out).items())
