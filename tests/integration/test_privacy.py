"""Privacy by design: consent policy, pseudonyms, the PII guard, erasure that leaves no trace, and no
resurrection of erased people."""

from __future__ import annotations

import json
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from stedi import ConfigError, Lakehouse, QualityError
from stedi.pipeline.report import RunReport
from stedi.tables import TABLES

from support import FIXTURES, TEST_KEY, assert_field_ids, key_of, rows, stedi_process, write_jsonl

EDGE = FIXTURES / "edge"
ALICE, CAROL = "alice@test.com", "carol@test.com"  # consenting with readings; not consenting
ANN, SAM = "ann@test.com", "sam@test.com"  # of the hand-made worlds below (not in fixtures/edge)
R = 1655560000000  # the edge fixtures' customer records' time (epoch ms)


def built(home: Path) -> Lakehouse:
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    lake.run()
    return lake


def customer_record(email: str, serial: str, consent: int | None = R) -> dict[str, Any]:
    return {"customerName": email.split("@")[0].title(), "email": email, "phone": "8015551212",
            "birthDay": "1990-01-01", "serialNumber": serial, "registrationDate": R, "lastUpdateDate": R,
            "shareWithResearchAsOfDate": consent, "shareWithPublicAsOfDate": None, "shareWithFriendsAsOfDate": None}


def reading(user: str, t: int, x: float) -> dict[str, Any]:
    return {"user": user, "timestamp": t, "x": x, "y": 0.0, "z": 0.0}


def step(serial: str, t: int, distance: int) -> dict[str, Any]:
    return {"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": distance}


def world(tmp_path: Path, records: dict[str, list[dict[str, Any]]], **settings: Any) -> tuple[Lakehouse, RunReport]:
    """A lakehouse at tmp_path/lake that ingested these records (one JSON Lines file per source) and ran."""
    for source, listed in records.items():
        write_jsonl(tmp_path / "world" / source / f"{source}-world.json", listed)
    lake = Lakehouse(tmp_path / "lake", **settings)
    lake.ingest(tmp_path / "world")
    return lake, lake.run()


def keys(lake: Lakehouse) -> set[str]:
    return {k for (k,) in rows(lake, "select distinct customer_key from machine_learning_curated")}


# -- pseudonyms -----------------------------------------------------------------------------------------
def test_pseudonyms_are_stable_under_one_key_and_differ_under_another(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lake = built(tmp_path / "lake")
    emails = [e for (e,) in rows(lake, "select email from customers_curated")]
    first = keys(lake)
    # alice, bob and erin have step trainer readings paired with their phones (see fixtures/edge)
    assert first == {key_of(e) for e in ("alice@test.com", "bob@test.com", "erin@test.com")}
    lake.run(full_refresh=True)
    assert keys(lake) == first  # same key, same pseudonyms, run after run
    other = "another-secret-key-0123456789"
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", other)
    report = lake.run()
    assert {t.table: t.status for t in report.tables}["machine_learning_curated"] == "built"
    assert {t.table: t.status for t in report.tables}["customers_curated"] == "up to date"
    second = keys(lake)
    assert second == {key_of(e, other) for e in emails if key_of(e) in first}
    assert not first & second


def test_the_ml_table_has_no_direct_identifier(tmp_path: Path) -> None:
    lake = built(tmp_path / "lake")
    assert lake.sql("select * from machine_learning_curated limit 0").column_names == [
        "customer_key", "sensorReadingTime", "distanceFromObject", "x", "y", "z"]
    identifiers = {v for row in rows(lake, "select customerName, email, phone, birthDay, serialNumber "
                                           "from customer_landing") for v in row if v}
    assert not keys(lake) & identifiers


def test_without_a_key_the_run_stops_and_says_how_to_make_one(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEDI_PSEUDONYM_KEY")
    lake = Lakehouse(tmp_path / "lake", pseudonym_key_file=tmp_path / "no-such.key")
    lake.ingest(EDGE)
    with pytest.raises(ConfigError, match=r"no pseudonym key.*stedi keygen.*STEDI_PSEUDONYM_KEY"):
        lake.run()
    assert not any(t.built for t in lake.tables() if t.name != "runs")  # only the failed run is recorded
    assert [(r["outcome"], r["table_name"]) for r in lake.history()] == [("failed", None)]
    lake.run(["customers_curated"])  # tables that need no key still build
    assert lake.describe("customers_curated").built


def test_keygen_writes_a_private_key_once_and_never_inside_the_root(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from stedi.cli.main import main

    monkeypatch.delenv("STEDI_PSEUDONYM_KEY")
    key_file = tmp_path / "keys" / "stedi.key"
    home = tmp_path / "lake"
    with pytest.raises(SystemExit) as code:
        main(["--home", str(home), "keygen", "--out", str(key_file)])
    assert code.value.code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) == 64
    with pytest.raises(SystemExit) as code:
        main(["--home", str(home), "keygen", "--out", str(key_file)])
    assert code.value.code == 1  # never overwrites a key
    with pytest.raises(SystemExit) as code:
        main(["--home", str(home), "keygen", "--out", str(home / "key")])
    assert code.value.code == 1  # never inside the lakehouse
    lake = Lakehouse(home, pseudonym_key_file=key_file)
    lake.ingest(EDGE)
    lake.run()
    assert keys(lake) <= {key_of(e, key_file.read_text().strip()) for (e,) in
                          rows(lake, "select email from customers_curated")}


def test_the_pii_guard_refuses_a_research_table_holding_an_identifier(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault injected into the ML SQL (the email as customer_key) never reaches the table."""
    import stedi.pipeline.derived

    real = stedi.pipeline.derived.table_sql

    def leaky(table: Any) -> str:
        sql = real(table)
        return sql.replace("pseudonyms.customer_key", "owners.email as customer_key") \
            if table.name == "machine_learning_curated" else sql

    monkeypatch.setattr(stedi.pipeline.derived, "table_sql", leaky)
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    with pytest.raises(QualityError, match="PII guard: 6 values of machine_learning_curated equal a landed"):
        lake.run()
    assert not lake.describe("machine_learning_curated").built


# -- consent policy -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_since_consent_policy_on_the_real_data(tmp_path: Path, shared_data: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(shared_data)
    lake.run()
    lake = Lakehouse(tmp_path / "lake", consent_policy="since_consent")
    report = lake.run()
    statuses = {t.table: t.status for t in report.tables}
    assert statuses["customer_trusted"] == "up to date" and statuses["accelerometer_trusted"] == "built"
    counts = {t.name: t.rows for t in lake.tables()}
    assert [counts[n] for n in ("customer_trusted", "accelerometer_trusted", "customers_curated",
                                "step_trainer_trusted", "machine_learning_curated")] == [
        482, 32_025, 464, 11_297, 32_025]
    assert rows(lake, "select count(*) from accelerometer_trusted a join customer_trusted c on a.user = c.email "
                      "where a.timestamp < c.shareWithResearchAsOfDate") == [(0,)]
    assert all(f.balanced for f in report.reconciliation)
    back = Lakehouse(tmp_path / "lake", consent_policy="any").run()
    assert {t.table: t.rows_out for t in back.tables}["accelerometer_trusted"] == 40_981


def test_since_consent_keeps_a_reading_taken_at_the_consent_time_and_drops_one_a_millisecond_before(
        tmp_path: Path) -> None:
    """The boundary is inclusive ("at or after" the consent date), for both kinds of reading and so in the
    ML table: a `>` for a `>=` in the consent SQL loses exactly the readings taken at the consent time."""
    consent = R + 3_600_000
    times = (consent - 1, consent, consent + 1000)
    lake, report = world(tmp_path, {
        "customer": [customer_record(ANN, "SN-ANN", consent=consent)],
        "accelerometer": [reading(ANN, t, x) for t, x in zip(times, (1.0, 2.0, 3.0), strict=True)],
        "step_trainer": [step("SN-ANN", t, d) for t, d in zip(times, (10, 20, 30), strict=True)],
    }, consent_policy="since_consent")
    assert rows(lake, "select * from accelerometer_trusted order by all") == [
        (ANN, consent, 2.0, 0.0, 0.0), (ANN, consent + 1000, 3.0, 0.0, 0.0)]
    assert rows(lake, "select * from step_trainer_trusted order by all") == [
        (consent, "SN-ANN", 20), (consent + 1000, "SN-ANN", 30)]
    assert rows(lake, "select * from machine_learning_curated order by all") == [
        (key_of(ANN), consent, 20, 2.0, 0.0, 0.0), (key_of(ANN), consent + 1000, 30, 3.0, 0.0, 0.0)]
    # the one reading a millisecond early is what each source filtered
    assert {f.source: (f.read, f.kept, f.filtered) for f in report.reconciliation} == {
        "customer": (1, 1, 0), "accelerometer": (3, 2, 1), "step_trainer": (3, 2, 1)}


# -- erasure --------------------------------------------------------------------------------------------
def traces(root: Path, needles: list[str]) -> list[str]:
    """Every file under root holding a needle: Parquet read as data, everything else as bytes; Iceberg
    manifests also through pyiceberg (they are compressed Avro), bounds included. Written here, apart
    from stedi's own check."""
    found = []
    lowered = [n.lower() for n in needles]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            text = json.dumps(pq.read_table(path).to_pylist(), default=str).lower()
        else:
            text = path.read_bytes().decode("latin-1").lower()
        if any(n in text for n in lowered):
            found.append(str(path.relative_to(root)))
    return found


def manifest_bounds(lake: Lakehouse) -> str:
    out = []
    for table in TABLES.values():
        ice = lake.catalog.load(table)
        if ice is None or ice.current_snapshot() is None:
            continue
        for manifest in ice.current_snapshot().manifests(ice.io):
            for entry in manifest.fetch_manifest_entry(ice.io, discard_deleted=False):
                out.append(repr(entry.data_file.lower_bounds) + repr(entry.data_file.upper_bounds))
    return "".join(out).lower()


@pytest.mark.parametrize("email", [ALICE, CAROL])
def test_erasure_leaves_no_trace_and_everyone_else_as_they_were(tmp_path: Path, email: str) -> None:
    home = tmp_path / "lake"
    lake = built(home)
    bad = write_jsonl(tmp_path / "bad" / "accelerometer" / "accelerometer-bad.json",
                      [{"user": email, "timestamp": "not a number"}])  # lands in the quarantine, raw text and all
    lake = Lakehouse(home, max_quarantine_share=0.5)
    lake.ingest(bad)
    lake.run(full_refresh=True)
    serial = rows(lake, f"select serialNumber from customer_landing where email = '{email}'")[0][0]
    needles = [email, serial, key_of(email)]
    assert traces(home, needles), "the lakehouse held the person before"
    others = {name: Counter(r for r in rows(lake, f"select * from {name}") if not any(
        str(n) in json.dumps(r, default=str) for n in needles)) for name in TABLES if TABLES[name].kind != "history"}

    receipt = lake.erase([email.upper()])  # addresses are matched case-insensitively
    assert receipt.people == 1 and receipt.landed_records_removed >= 2
    assert traces(home, needles) == []
    assert not any(n.lower() in manifest_bounds(lake) for n in needles)
    for table in TABLES.values():
        ice = lake.catalog.load(table)
        assert ice is not None and len(ice.metadata.snapshots) <= 1, table.name
    after = {name: Counter(rows(lake, f"select * from {name}")) for name in TABLES if TABLES[name].kind != "history"}
    assert after == others
    assert_field_ids(lake)  # the tables the erasure rebuilt
    log = (home / "privacy" / "erasures.jsonl").read_text()
    assert email not in log.lower() and serial not in log and receipt.receipt_id in log
    assert json.loads(log.splitlines()[-1])["rows_removed"]["customer_landing"] == 1


def test_erased_people_do_not_come_back(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = built(home)
    lake.erase([ALICE])
    again = lake.ingest(EDGE)  # the same raw files
    assert again.landed == [] and len(again.unchanged) == 3
    new = write_jsonl(tmp_path / "new" / "accelerometer" / "accelerometer-new.json", [
        {"user": ALICE, "timestamp": 1655564409000, "x": 1.0, "y": 1.0, "z": 1.0},
        {"user": "bob@test.com", "timestamp": 1655564409000, "x": 1.0, "y": 1.0, "z": 1.0}])
    report = lake.ingest(new)
    assert report.suppressed == 1 and len(report.landed) == 1
    lake.run()
    assert rows(lake, f"select count(*) from accelerometer_landing where user = '{ALICE}'") == [(0,)]
    assert rows(lake, "select count(*) from accelerometer_landing where user = 'bob@test.com' "
                      "and timestamp = 1655564409000") == [(1,)]
    assert traces(home, [ALICE, "SN-ALICE", key_of(ALICE)]) == []
    suppressed = (home / "privacy" / "suppressed.json").read_text()
    assert ALICE not in suppressed and "SN-ALICE" not in suppressed


def test_records_dropped_from_a_redelivery_are_counted_in_the_reconciliation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After an erasure, the raw files delivered again (same names, then copies under new names) lose the
    person's records at ingest and are otherwise landed already: nothing lands, but what was dropped shows
    as `suppressed` in the next run's figures, every time (the figures add up over every delivery, as
    `read` does over every landed file), and an erasure rewriting those files keeps the counts."""
    import csv
    import io
    import shutil

    from stedi.cli.main import main

    def stedi(*args: str | Path) -> tuple[str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["--home", str(home), *map(str, args)])
        out, err = capsys.readouterr()
        assert exited.value.code == 0, err
        return out, err

    def run_figures() -> dict[str, int]:
        """`stedi run`'s reconciliation table: source -> suppressed (checked balanced)."""
        out, _ = stedi("run")
        lines = out.split("Every landed record accounted for")[1].split("\n\n")[0].splitlines()[1:]
        header, rule, *body = lines
        assert header.split() == ["source", "read", "kept", "filtered", "quarantined", "duplicates", "suppressed"]
        return {cells[0]: int(cells[-1]) for cells in (line.split() for line in body)}

    def reconciled() -> dict[str, int]:
        out, _ = stedi("reconcile", "--format", "csv")
        figures = list(csv.DictReader(io.StringIO(out)))
        assert all(f["balanced"] == "true" for f in figures)
        return {f["source"]: int(f["suppressed"]) for f in figures}

    home = tmp_path / "lake"
    lake = built(home)
    stedi("erase", "--email", ALICE)  # her 1 customer record, 5 readings and 5 readings of her device
    out, err = stedi("ingest", EDGE)  # the raw files again, under the names they landed with
    assert out.startswith("0 landed, 3 already landed, 1 skipped, 11 records of erased people dropped ")
    assert (f"unchanged {EDGE / 'accelerometer' / 'accelerometer-edge.json'}: already landed as "
            "accelerometer/accelerometer-edge.json (without its 5 records of erased people)") in err
    once = {"customer": 1, "accelerometer": 5, "step_trainer": 5}
    assert run_figures() == once == reconciled()
    assert rows(lake, "select source, suppressed from reconciliation where run_id = (select max_by(run_id, run_at) "
                      "from reconciliation) order by source") == sorted(once.items())

    copies = tmp_path / "copies"
    for source in once:  # a copy of each under a new name
        (copies / source).mkdir(parents=True)
        shutil.copy(EDGE / source / f"{source}-edge.json", copies / source / f"{source}-again.json")
    out, _ = stedi("ingest", copies)
    assert out.startswith("0 landed, 3 already landed, 0 skipped, 11 records of erased people dropped ")
    twice = {source: 2 * n for source, n in once.items()}
    assert run_figures() == twice == reconciled()
    assert {f.source: f.suppressed for f in lake.landed_files()} == twice  # in the entries of the landed files
    stedi("run")
    assert reconciled() == twice  # a run with nothing new keeps them

    stedi("erase", "--email", "bob@test.com")  # rewrites the same landed files: their counts stay
    assert reconciled() == twice
    assert {f.source: f.suppressed for f in Lakehouse(home).landed_files()} == twice


def test_erase_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stedi.cli.main import main

    home = tmp_path / "lake"
    built(home)
    people = tmp_path / "people.txt"
    people.write_text(f"{ALICE}\n\n{CAROL}\n")
    with pytest.raises(SystemExit) as code:
        main(["--home", str(home), "erase", "--file", str(people), "--email", "bob@test.com"])
    assert code.value.code == 0
    out = capsys.readouterr().out
    assert "erased 3 people" in out and ALICE not in out and TEST_KEY not in out
    with pytest.raises(SystemExit) as code:
        main(["--home", str(home), "erase"])
    assert code.value.code == 2


def test_erased_people_dropped_into_the_landing_folder_stay_out_and_are_counted(tmp_path: Path) -> None:
    """Upstream systems deliver straight into landing/<source>/ (no `stedi ingest`): the next writer adopts
    those files without the erased people's records, and the reconciliation counts what it kept out."""
    home = tmp_path / "lake"
    lake = built(home)
    lake.erase([ALICE])
    for source in ("customer", "accelerometer", "step_trainer"):
        (home / "landing" / source / f"{source}-redelivered.json").write_bytes(
            (EDGE / source / f"{source}-edge.json").read_bytes())
    report = Lakehouse(home).run()
    assert rows(lake, f"select count(*) from customer_trusted where email = '{ALICE}'") == [(0,)]
    assert rows(lake, "select count(*) from step_trainer_landing where serialNumber = 'SN-ALICE'") == [(0,)]
    assert traces(home, [ALICE, "SN-ALICE", key_of(ALICE)]) == []
    # her 1 customer record, 5 readings and 5 device readings, in each redelivered file
    assert {f.source: f.suppressed for f in report.reconciliation} == {
        "customer": 1, "accelerometer": 5, "step_trainer": 5}
    assert all(f.balanced for f in report.reconciliation)
    landed = {(f.source, f.name): f for f in lake.landed_files()}
    assert landed[("customer", "customer-redelivered.json")].suppressed == 1
    assert landed[("customer", "customer-redelivered.json")].origin == "found in the landing zone"
    assert rows(lake, "select source, suppressed from reconciliation where run_id = "
                      f"'{report.run_id}' order by source") == [("accelerometer", 5), ("customer", 1),
                                                               ("step_trainer", 5)]


def test_a_temporary_file_left_by_a_killed_writer_is_swept_by_the_next(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    built(home)
    left = home / "landing" / "customer" / ".customer-late.json.tmp"  # how a killed ingest leaves a file
    left.write_bytes((EDGE / "customer" / "customer-edge.json").read_bytes())
    receipt = Lakehouse(home).erase([ALICE])  # the proof scan would find her in it
    assert receipt.people == 1 and not left.exists()
    assert traces(home, [ALICE, "SN-ALICE"]) == []


def test_an_older_reconciliation_history_gains_new_columns_and_keeps_its_rows(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A history is never rebuilt: a lakehouse made before a column was added keeps every row it had."""
    from dataclasses import replace

    current = TABLES["reconciliation"]
    monkeypatch.setitem(TABLES, "reconciliation", replace(current, columns=current.columns[:-1]))
    lake = built(tmp_path / "lake")
    first_run = rows(lake, "select run_id from reconciliation")[0][0]
    assert lake.sql("select * from reconciliation limit 0").column_names[-1] == "balanced"
    monkeypatch.setitem(TABLES, "reconciliation", current)
    lake = Lakehouse(tmp_path / "lake")
    lake.run(full_refresh=True)
    assert rows(lake, "select run_id = '" + first_run + "' as old, count(*), count(suppressed) from reconciliation "
                      "group by all order by old") == [(False, 3, 3), (True, 3, 0)]
    assert_field_ids(lake)  # the column added got the next field id, which the new files carry
    assert lake.reconcile()[0]["suppressed"] == 0


def test_a_record_naming_the_email_twice_is_erased_whichever_value_names_the_person(tmp_path: Path) -> None:
    """A record with `email` twice is quarantined (duplicate_key) with its text: an erasure of either address
    must take it out of the landed file and the quarantine."""
    home = tmp_path / "lake"
    lake = built(home)
    twice = tmp_path / "more" / "customer" / "customer-twice.json"
    twice.parent.mkdir(parents=True)
    twice.write_text('{"customerName": "X", "email": "' + ALICE + '", "email": "x@test.com", "phone": "1", '
                     '"birthDay": "1990-01-01", "serialNumber": "SN-X", "registrationDate": 1, '
                     '"lastUpdateDate": 2, "shareWithResearchAsOfDate": 3}\n')
    lake = Lakehouse(home, max_quarantine_share=0.5)
    lake.ingest(twice)
    lake.run()
    assert rows(lake, "select reason from customer_quarantine") == [("duplicate_key",)]
    lake.erase([ALICE])
    assert traces(home, [ALICE]) == []
    assert rows(lake, "select count(*) from customer_quarantine") == [(0,)]


def test_no_form_of_file_in_the_landing_folder_brings_an_erased_person_back(tmp_path: Path) -> None:
    """Every form a file dropped into landing/<source>/ can take: plain JSON is adopted without the erased
    person's records; compressed, hidden and subfolder files are never read, and every run says so."""
    import gzip

    home = tmp_path / "lake"
    lake = built(home)
    lake.erase([ALICE])
    readings = (EDGE / "accelerometer" / "accelerometer-edge.json").read_bytes()
    assert ALICE.encode() in readings
    folder = home / "landing" / "accelerometer"
    (folder / "late.json.gz").write_bytes(gzip.compress(readings))
    (folder / "late.jsonl.zst").write_bytes(readings)
    (folder / ".hidden.json").write_bytes(readings)
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.json").write_bytes(readings)
    (folder / "late.ndjson").write_bytes(readings)  # a form the reader takes: filtered on adoption
    said: list[str] = []
    report = Lakehouse(home).run(progress=said.append)
    assert rows(lake, f"select count(*) from accelerometer_landing where user = '{ALICE}'") == [(0,)]
    assert {f.source: f.suppressed for f in report.reconciliation}["accelerometer"] == 5  # from late.ndjson
    warnings = [line for line in said if line.startswith("warning: ")]
    assert sorted(w.split(" is not read: ")[0].rsplit("/", 1)[-1] for w in warnings) == [
        ".hidden.json", "late.json.gz", "late.jsonl.zst", "nested.json"]
    assert any("late.json.gz is not read: a compressed file" in w for w in warnings)
    assert any("nested.json is not read: in a subfolder" in w for w in warnings)
    names = {f.name for f in lake.landed_files() if f.source == "accelerometer"}
    assert names == {"accelerometer-edge.json", "late.ndjson"}
    again: list[str] = []
    Lakehouse(home).run(progress=again.append)
    assert [line for line in again if line.startswith("warning: ")] == warnings  # said on every run


def test_an_erasure_meeting_a_file_stedi_never_reads_warns_and_blocks_nothing(tmp_path: Path) -> None:
    """A hidden or subfolder file in landing/<source>/ naming the person: the erasure says it was not cleaned
    and finishes (receipt written, journal gone); the next writers run as before."""
    home = tmp_path / "lake"
    lake = built(home)
    readings = (EDGE / "accelerometer" / "accelerometer-edge.json").read_bytes()
    folder = home / "landing" / "accelerometer"
    (folder / ".hidden.json").write_bytes(readings)
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.json").write_bytes(readings)
    said: list[str] = []
    receipt = lake.erase([ALICE], progress=said.append)
    assert receipt.rows_removed["accelerometer_landing"] == 5
    warned = sorted(line.split(" was not cleaned")[0].rsplit("/", 1)[-1] for line in said
                    if line.startswith("warning: "))
    assert warned == [".hidden.json", "nested.json"]
    assert not (home / "privacy" / "erasing.json").exists()
    assert len((home / "privacy" / "erasures.jsonl").read_text().splitlines()) == 1  # the receipt
    Lakehouse(home).run()  # not blocked
    assert rows(lake, f"select count(*) from accelerometer_landing where user = '{ALICE}'") == [(0,)]
    # the only traces left: the two files it named
    assert traces(home, [ALICE]) == ["landing/accelerometer/.hidden.json", "landing/accelerometer/sub/nested.json"]


def test_a_trace_in_a_file_stedi_does_not_manage_is_named_and_blocks_no_writer(tmp_path: Path) -> None:
    """An operator's export beside the lakehouse's folders names the person: the erasure names the file,
    exits 1, and finishes all the same: journal gone, receipt counting what it removed, writers working."""
    home = tmp_path / "lake"
    built(home)
    (home / "exports").mkdir()
    (home / "exports" / "crm.csv").write_text(f"name,email\nAlice,{ALICE}\n")
    erased = stedi_process(home, "erase", "--email", ALICE)
    assert erased.returncode == 1
    assert f"warning: {home}/exports/crm.csv still holds a trace of the people erased" in erased.stderr
    assert erased.stderr.splitlines()[-1].startswith("error: erasure ") and \
        erased.stderr.splitlines()[-1].endswith(f"finished, but 1 file stedi does not manage still names them "
                                                f"(e.g. {home}/exports/crm.csv): delete them")
    assert not (home / "privacy" / "erasing.json").exists()
    [receipt] = [json.loads(line) for line in (home / "privacy" / "erasures.jsonl").read_text().splitlines()]
    assert receipt["traces_left"] == [f"{home}/exports/crm.csv"]
    assert receipt["rows_removed"]["accelerometer_landing"] == 5 and receipt["landed_records_removed"] > 0
    for command in (["run"], ["optimize"], ["ingest", EDGE]):
        assert stedi_process(home, *command).returncode == 0, command
    assert traces(home, [ALICE]) == ["exports/crm.csv"]


def test_erasing_one_owner_of_a_shared_device_keeps_the_device_and_the_other_owner(tmp_path: Path) -> None:
    """Two customers name the same serial number: the device's readings are the other owner's data too, so
    erasing one owner removes that person (customer record, phone readings, pseudonym) and keeps the device's
    readings and the other owner's ML rows, row for row."""
    t1, t2 = R + 1000, R + 2000
    lake, _ = world(tmp_path, {
        "customer": [customer_record(ANN, "SN-SHARED"), customer_record(SAM, "SN-SHARED")],
        "accelerometer": [reading(ANN, t1, 1.0), reading(SAM, t2, 2.0)],
        "step_trainer": [step("SN-SHARED", t1, 11), step("SN-SHARED", t2, 12)],
    })
    assert rows(lake, "select * from machine_learning_curated order by all") == sorted([
        (key_of(ANN), t1, 11, 1.0, 0.0, 0.0), (key_of(SAM), t2, 12, 2.0, 0.0, 0.0)])
    dry = lake.erasure_plan([ANN])
    assert (dry.devices, dry.shared_devices, dry.landed_records) == (0, 1, {"customer": 1, "accelerometer": 1})

    said: list[str] = []
    receipt = lake.erase([ANN], progress=said.append)
    assert receipt.landed_records_removed == 2  # her customer record and her phone's reading
    assert "note: 1 device(s) also belong to other customers: their readings are kept" in said
    device = [(t1, "SN-SHARED", 11), (t2, "SN-SHARED", 12)]
    assert rows(lake, "select * from step_trainer_landing order by all") == device
    assert rows(lake, "select * from step_trainer_trusted order by all") == device  # SAM's device still
    assert rows(lake, "select email, serialNumber from customer_trusted") == [(SAM, "SN-SHARED")]
    assert rows(lake, "select * from accelerometer_trusted") == [(SAM, t2, 2.0, 0.0, 0.0)]
    assert rows(lake, "select * from machine_learning_curated") == [(key_of(SAM), t2, 12, 2.0, 0.0, 0.0)]
    assert traces(tmp_path / "lake", [ANN, key_of(ANN)]) == []
    again = lake.ingest(write_jsonl(tmp_path / "later" / "step_trainer" / "step_trainer-later.json",
                                    [step("SN-SHARED", R + 3000, 13)]))
    assert again.suppressed == 0 and len(again.landed) == 1  # the device is not on the suppression list


@pytest.mark.parametrize("way", ["ingest", "dropped into the landing folder"])
def test_an_array_file_after_an_erasure_lands_everyone_but_the_erased(tmp_path: Path, way: str) -> None:
    """A landed file may be one JSON array. After an erasure, the array [erased person's reading, another's]
    lands the other's reading and not the erased person's, whichever way it arrives: `stedi ingest`, or
    dropped straight into landing/<source>/ and adopted by the next writer (elements are numbered from 1,
    as the landing reader numbers them)."""
    home = tmp_path / "lake"
    lake = built(home)
    lake.erase([ALICE])
    t = 1655564409000
    late = [reading(ALICE, t, 1.0), reading("bob@test.com", t, 2.0)]
    if way == "ingest":
        source_file = tmp_path / "late" / "accelerometer" / "accelerometer-array.json"
        source_file.parent.mkdir(parents=True)
        source_file.write_text(json.dumps(late))
        landed = lake.ingest(source_file)
        assert landed.suppressed == 1 and len(landed.landed) == 1
    else:
        (home / "landing" / "accelerometer" / "accelerometer-array.json").write_text(json.dumps(late))
    report = Lakehouse(home).run()
    assert json.loads((home / "landing" / "accelerometer" / "accelerometer-array.json").read_text()) == late[1:]
    assert rows(lake, f"select * from accelerometer_landing where timestamp = {t}") == [
        ("bob@test.com", t, 2.0, 0.0, 0.0)]
    assert rows(lake, f"select * from accelerometer_trusted where timestamp = {t}") == [
        ("bob@test.com", t, 2.0, 0.0, 0.0)]
    assert {f.source: f.suppressed for f in report.reconciliation}["accelerometer"] == 1  # counted, either way
    assert traces(home, [ALICE, "SN-ALICE", key_of(ALICE)]) == []
