"""The verification of the reconciliation: the figures a run recorded, recounted from the tables as they are
(`stedi reconcile --verify`, `Lakehouse.verify_reconciliation()`, and every run under
`verify_reconciliation = "always"`). Tables are tampered with by real Iceberg commits through pyiceberg's
own catalog, as another writer would."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table as IcebergTable

from stedi import Lakehouse, QualityError, ReconciliationError
from stedi.cli.main import main

from support import FIXTURES, Batches, built, rows

EDGE = FIXTURES / "edge"


@pytest.fixture
def lake(home: Path) -> Lakehouse:
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    lake.run()
    return lake


def iceberg(lake: Lakehouse, name: str) -> IcebergTable:
    """The table as another pyiceberg writer sees it (not through stedi's catalog)."""
    return SqlCatalog("stedi", **lake.settings.catalog_properties()).load_table(("stedi", name))


def delete_a_reading(lake: Lakehouse, keep_properties: bool = False) -> None:
    """One reading out of accelerometer_trusted; `keep_properties`: the commit carries the snapshot
    properties over (stedi's fingerprint included), so stedi takes the table for unchanged."""
    [(user, timestamp)] = rows(lake, 'select "user", "timestamp" from accelerometer_trusted '
                                     'order by "user", "timestamp" limit 1')
    assert rows(lake, f"select count(*) from accelerometer_trusted where \"user\" = '{user}' "
                      f'and "timestamp" = {timestamp}') == [(1,)]
    table = iceberg(lake, "accelerometer_trusted")
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    carried = {k: v for k, v in snapshot.summary.additional_properties.items() if k.startswith("stedi.")} \
        if keep_properties else {}
    table.delete(And(EqualTo("user", user), EqualTo("timestamp", timestamp)), snapshot_properties=carried)


def quarantine_a_record(lake: Lakehouse) -> None:
    table = iceberg(lake, "customer_quarantine")
    row = {"file": "landing/customer/forged.json", "position": 1, "reason": "invalid_json", "message": "forged",
           "raw": "{", "run_id": "forged"}
    table.append(pa.Table.from_pylist([row], schema=table.schema().as_arrow()))


def figure(lake: Lakehouse, source: str, term: str) -> int:
    [value] = [f[term] for f in lake.reconcile() if f["source"] == source]
    return int(value)


def reconcile_verify(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_code:
        main(["--home", str(home), "reconcile", "--verify", *args])
    out, err = capsys.readouterr()
    return int(exit_code.value.code or 0), out, err


def test_a_clean_lakehouse_verifies(lake: Lakehouse, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lake.settings.verify_reconciliation == "always"  # tests/conftest.py: every run of the suite verifies
    assert lake.verify_reconciliation() == lake.reconcile()
    assert [f["source"] for f in lake.verify_reconciliation()] == ["customer", "accelerometer", "step_trainer"]

    code, out, err = reconcile_verify(home, capsys)
    assert (code, err) == (0, "")
    # no `warnings` under the reconciliation: no term of the balance (each rule's count is under "Quality rules")
    assert out.splitlines()[0].split() == ["source", "read", "kept", "filtered", "quarantined", "duplicates",
                                           "suppressed", "balanced"]
    assert "\nQuality rules: no landed record matched a rule\n" in out
    assert out.rstrip().endswith("verified: a recount of every source from the current tables gives the same "
                                 "figures (consent_policy = 'any')")
    code, out, err = reconcile_verify(home, capsys, "--format", "json")  # stdout stays the documented JSON
    assert code == 0 and out.lstrip().startswith("[") and err.startswith("verified: ")


def test_tampered_tables_fail_the_verification_naming_every_disagreement(
        lake: Lakehouse, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept, quarantined = figure(lake, "accelerometer", "kept"), figure(lake, "customer", "quarantined")
    delete_a_reading(lake)
    quarantine_a_record(lake)

    with pytest.raises(ReconciliationError) as raised:
        Lakehouse(home).verify_reconciliation()
    message = str(raised.value)
    assert f"customer: quarantined recorded {quarantined:,} but recounted {quarantined + 1:,}" in message
    assert f"accelerometer: kept recorded {kept:,} but recounted {kept - 1:,}" in message
    assert "step_trainer" not in message and isinstance(raised.value, QualityError)

    code, out, err = reconcile_verify(home, capsys)
    assert (code, out) == (1, "")
    assert err.startswith("error: the reconciliation of run ") and err.count("\n") == 1
    assert f"accelerometer: kept recorded {kept:,} but recounted {kept - 1:,}" in err
    assert "verified" not in err
    code, _, _ = reconcile_verify(home, capsys, "--run", lake.reconcile()[0]["run_id"])
    assert code == 2  # --verify checks the latest run against the tables as they are now


def test_the_recount_uses_the_lakehouses_consent_policy(batches: Batches, home: Path) -> None:
    """The tables were built under `any`: recounted under `since_consent`, readings from before a
    consent date count as filtered, so the recorded figures no longer agree."""
    built(home, batches.first)
    with pytest.raises(ReconciliationError, match=r"accelerometer: filtered recorded \d+ but recounted \d+.*"
                                                  r"consent_policy = 'since_consent'"):
        Lakehouse(home, consent_policy="since_consent").verify_reconciliation()
    Lakehouse(home, consent_policy="since_consent").run()  # rebuilt under it, recorded, verified
    assert Lakehouse(home, consent_policy="since_consent").verify_reconciliation()


def test_a_run_fails_when_a_table_changed_behind_its_back(
        lake: Lakehouse, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A commit that carries stedi's fingerprint over hides the change from the build: the tables are kept
    and filtered and duplicates carried over, but kept is the trusted table's committed row count, so the
    figures do not balance and the run fails (under "never" too), after recording them."""
    kept = figure(lake, "accelerometer", "kept")
    delete_a_reading(lake, keep_properties=True)

    runs = {r for (r,) in rows(lake, "select distinct run_id from reconciliation")}
    with pytest.raises(QualityError, match=rf"do not balance: accelerometer: read [0-9,]+ != kept {kept - 1:,}"):
        Lakehouse(home, verify_reconciliation="never").run()
    [_latest] = {r["run_id"] for r in lake.reconcile()} - runs  # its figures were recorded before it failed
    assert figure(lake, "accelerometer", "kept") == kept - 1

    with pytest.raises(SystemExit) as exit_code:
        main(["--home", str(home), "run"])
    assert exit_code.value.code != 0
    assert "do not balance: accelerometer" in capsys.readouterr().err

    Lakehouse(home).run(full_refresh=True)  # rebuilt and counted afresh: verified
    assert figure(lake, "accelerometer", "kept") == kept
    assert Lakehouse(home).verify_reconciliation()


def test_a_lakehouse_without_a_run_says_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Lakehouse(home).ingest(EDGE)
    code, out, err = reconcile_verify(home, capsys)
    assert (code, out) == (1, "")
    assert err == "error: no run has been reconciled yet; run `stedi run` first\n"
