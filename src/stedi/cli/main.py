"""`stedi ...`: commands parse options, call the Python API and hand results to cli.output.

Errors print `error: <message>` and exit 1 (2 for usage errors), without a traceback unless --debug.
Heavy modules (pyiceberg, duckdb) are imported only by the commands that need them.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from stedi._version import __version__
from stedi.cli.output import FORMATS, Format, head, json_value, render, rows_of, write_csv, write_json
from stedi.config import CONSENT_POLICIES, ENGINES
from stedi.errors import ConfigError, ErasureError, LandingError, StediError
from stedi.tables import SOURCES, TABLES
from stedi.text import plural

TABLE_ROWS_SHOWN = 1000


class Context:
    def __init__(self, home: str | None, config: str | None, debug: bool) -> None:
        self.home, self.config, self.debug = home, config, debug

    def lakehouse(self, **overrides: Any) -> Any:
        from stedi.api import Lakehouse

        return Lakehouse(self.home, config=self.config, **overrides)

    def settings(self) -> Any:
        """The settings (stedi.toml, STEDI_* variables, --home) without opening a lakehouse."""
        from stedi.config import load_settings

        return load_settings(self.config, home=self.home)


class _Voice:
    """How much goes to stderr: -q only warnings and errors, -v each line with the seconds since the start."""

    level = 0
    started = time.perf_counter()


def _say(message: str) -> None:
    """Progress and notes, on stderr (stdout is the data's)."""
    if _Voice.level < 0 and not message.startswith(("warning:", "error:")):
        return
    if _Voice.level > 0:
        message = f"[{time.perf_counter() - _Voice.started:7.2f} s] {message}"
    click.echo(message, err=True)


def _error(message: str) -> None:
    """An error or an interruption: said whatever -q says."""
    click.echo(message, err=True)


def _emit(fmt: Format, columns: list[str], rows: list[list[Any]] | list[tuple[Any, ...]],
          summary: str | None = None, sentence: bool = False) -> None:
    """A command's result: the rows in the format asked for, on stdout; the summary line after the table
    (alone when the result is a `sentence`), or on stderr for csv and json, whose stdout holds only the data."""
    if fmt != "table" or not sentence:
        click.echo(render(columns, rows, fmt))
    if summary is not None:
        if fmt == "table":
            click.echo(summary)
        else:
            _say(summary)


def _json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=json_value))


format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                             help="Output format (csv and json: only the data on stdout, notes on stderr).")
wait_option = click.option("--wait", "wait", type=click.FloatRange(min=0), metavar="SECONDS",
                           help="If another writer holds the lakehouse, wait up to this long for it (default: the "
                                "setting lock_wait, 0: fail at once).")


as_of_option = click.option("--as-of", "as_of", metavar="RUN_ID|TAG|TIME",
                            help="Every table as it stood in that state: a run id (`stedi history`), a tag "
                                 "(`stedi tags`) or a time (ISO 8601, UTC unless it has an offset).")
table_names = click.Choice(list(TABLES))
# what `run --select` builds and `export` writes: every table but the audit tables, which every command appends to
state_tables = click.Choice([n for n, t in TABLES.items() if t.kind != "history"])


def _tag_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from stedi.states.tags import check_name

    try:
        check_name(value)
    except StediError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A global option given after the command: it overrides the one before it."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return
        if name == "quiet":
            _Voice.level = -1
        elif name == "verbose":
            _Voice.level = 1
        else:
            setattr(ctx.find_object(Context), name, value)

    return callback


def _global_options(after: bool = False) -> list[click.Parameter]:
    """--home, --config, --debug, -q and -v, accepted before or after the command (`after`: the copies a
    command takes, hidden in its help and reading no environment variable: the group's read it once)."""

    def env(name: str) -> str | None:
        return None if after else name

    return [
        click.Option(["--home"], envvar=env("STEDI_HOME"), metavar="PATH", expose_value=False, hidden=after,
                     callback=_set("home"),
                     help="Lakehouse root (default ./lakehouse; env STEDI_HOME; `home` in stedi.toml)."),
        click.Option(["--config"], type=click.Path(dir_okay=False), envvar=env("STEDI_CONFIG"), hidden=after,
                     expose_value=False, callback=_set("config"),
                     help="Settings file (default ./stedi.toml if present)."),
        click.Option(["--debug"], is_flag=True, expose_value=False, hidden=after, callback=_set("debug"),
                     help="Show tracebacks on errors."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, hidden=after, callback=_set("quiet"),
                     help="No progress or notes on stderr (warnings and errors still)."),
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, hidden=after, callback=_set("verbose"),
                     help="Each progress line with the seconds since the command started."),
    ]


class Group(click.Group):
    """A group whose commands take the global options too (hidden in their help, named in its last line)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group):
            cmd.params.extend(_global_options(after=True))
            cmd.epilog = "Global options, before or after the command: --home, --config, --debug, -q, -v."
        super().add_command(cmd, name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if parent is None:  # the Context exists before the options' callbacks fill it
            extra.setdefault("obj", Context(None, None, False))
        return super().make_context(info_name, args, parent, **extra)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stedi")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """stedi: the STEDI Human Balance lakehouse (landing -> trusted -> curated Iceberg tables)."""
    ctx.ensure_object(Context)


cli.params[:0] = _global_options()

@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--scale", default=1.0, show_default=True, type=float,
              help="1 is about the size of the real data (956 customers, 81k accelerometer readings).")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same files.")
@click.option("--next-batch-of", "base", type=click.Path(exists=True, file_okay=False), metavar="BASE",
              help="Write the next daily batch of the data in BASE instead (new customers with their readings, "
                   "a few existing customers' consent changed); --scale is then BASE's.")
@click.option("--share", default=0.01, show_default=True, type=float,
              help="With --next-batch-of: new customers, as a share of BASE's.")
@format_option
def generate(out: str, scale: float, seed: int, base: str | None, share: float, fmt: Format) -> None:
    """Write synthetic landing data (customer/, accelerometer/, step_trainer/) into OUT."""
    from stedi.generate import generate as make
    from stedi.generate import generate_batch

    try:
        if base is None:
            report = make(Path(out), scale=scale, seed=seed, progress=_say)
        else:
            report = generate_batch(Path(base), Path(out), share=share, seed=seed, progress=_say)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _emit(fmt, ["source", "records"], [
        ["customer", report.customer_records],
        ["accelerometer", report.accelerometer_records],
        ["step_trainer", report.step_trainer_records],
    ], f"{plural(report.files, 'file')} written to {report.out} in {report.seconds:.1f} s")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--source", type=click.Choice(SOURCES), help="Source of every file given (else from folder names).")
@click.option("--follow-symlinks", is_flag=True, help="Land files that symbolic links inside a folder given lead "
              "to, even outside it (by default they are skipped).")
@format_option
@wait_option
@click.pass_obj
def ingest(obj: Context, paths: tuple[str, ...], source: str | None, follow_symlinks: bool, fmt: Format,
           wait: float | None) -> None:
    """Copy landing files (or folders of them) into the landing zone. Idempotent."""
    lake = obj.lakehouse(lock_wait=wait)
    report = lake.ingest(*paths, source=source, follow_symlinks=follow_symlinks, progress=_say)
    if report.skipped and not report.landed and not report.unchanged:  # nothing the user named was landed
        raise LandingError(f"nothing landed: {plural(len(report.skipped), 'path')} given, every one skipped "
                           f"(e.g. {report.skipped[0][0]}: {report.skipped[0][1]})")
    if fmt == "table":
        for path, why in report.skipped:
            _say(f"skipped {path}: {why}")
        for path, why in report.unchanged:
            _say(f"unchanged {path}: {why}")
        dropped = f", {report.suppressed:,} records of erased people dropped" if report.suppressed else ""
        click.echo(f"{len(report.landed)} landed, {len(report.unchanged)} already landed, "
                   f"{len(report.skipped)} skipped{dropped} (landing zone: {lake.landing.root})")
    else:
        rows = [[f.origin, f"{f.source}/{f.name}", "landed", f.size, None] for f in report.landed]
        rows += [[str(path), None, "unchanged", None, why] for path, why in report.unchanged]
        rows += [[str(path), None, "skipped", None, why] for path, why in report.skipped]
        _emit(fmt, ["path", "landed_as", "status", "bytes", "note"], rows)


@cli.command()
@click.option("--select", "select", multiple=True, type=state_tables, metavar="TABLE",
              help="Build this table and what it needs (repeatable; the audit tables are written by every run).")
@click.option("--full-refresh", is_flag=True, help="Rebuild every table even if its inputs did not change.")
@click.option("--engine", type=click.Choice(ENGINES), envvar="STEDI_ENGINE",
              help="Compute engine (default from settings: duckdb).")
@click.option("--spark-master", metavar="URL", help="Spark master for --engine spark (default local[*]).")
@click.option("--consent-policy", type=click.Choice(CONSENT_POLICIES), envvar="STEDI_CONSENT_POLICY",
              help="any: every reading of a consenting customer (default); since_consent: only readings "
                   "taken from the consent date on.")
@format_option
@wait_option
@click.pass_obj
def run(obj: Context, select: tuple[str, ...], full_refresh: bool, engine: str | None, spark_master: str | None,
        consent_policy: str | None, fmt: Format, wait: float | None) -> None:
    """Build the tables landing -> trusted -> curated, each in one atomic Iceberg commit."""
    lake = obj.lakehouse(engine=engine, spark_master=spark_master, consent_policy=consent_policy, lock_wait=wait)
    report = lake.run(select, full_refresh=full_refresh, progress=_say)
    columns = ["table", "zone", "status", "rows_in", "rows_out", "quarantined", "seconds"]
    rows = [[t.table, t.zone, t.status, t.rows_in, t.rows_out, t.quarantined, round(t.seconds, 2)]
            for t in report.tables]
    built = sum(t.status == "built" for t in report.tables)
    appended = sum(t.status == "appended" for t in report.tables)
    updated = sum(t.status == "updated" for t in report.tables)
    summary = (f"{built} built, " + (f"{appended} appended, " if appended else "")
               + (f"{updated} updated, " if updated else "")
               + f"{len(report.tables) - built - appended - updated} up to date, "
               f"{report.seconds:.2f} s on {report.engine} (run {report.run_id})")
    if fmt == "json":  # one object: what a script needs to go on (tag the run, check the balance)
        _say(summary)
        _json({"run_id": report.run_id, "engine": report.engine, "seconds": round(report.seconds, 2),
               "tables": [dict(zip(columns, row, strict=True)) for row in rows],
               "reconciliation": [{c: getattr(f, c) for c in [*RECONCILE_COLUMNS, "balanced"]}
                                  for f in report.reconciliation],
               "quality_rules": [{"source": r.source, "rule": r.rule, "action": r.action, "rows": r.rows}
                                 for r in report.rules]})
        return
    _emit(fmt, columns, rows, summary)
    if fmt == "table":
        if report.reconciliation:
            click.echo("\nEvery landed record accounted for (read = kept + filtered + quarantined + duplicates):")
            click.echo(render(RECONCILE_COLUMNS, [[getattr(f, c) for c in RECONCILE_COLUMNS]
                                                  for f in report.reconciliation]))
            _quality_rules([[r.source, r.rule, r.action, r.rows] for r in report.rules])


@cli.command()
@click.argument("query")
@format_option
@click.option("--all", "show_all", is_flag=True, help=f"Table format: show every row, not the first "
              f"{TABLE_ROWS_SHOWN:,}.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop the query after this long (default: the setting query_timeout, else no limit).")
@as_of_option
@click.pass_obj
def sql(obj: Context, query: str, fmt: Format, show_all: bool, timeout: float | None, as_of: str | None) -> None:
    """Run a read-only SQL QUERY over every table by name ('-' reads it from stdin)."""
    if query == "-":
        query = sys.stdin.read()
    with obj.lakehouse(query_timeout=timeout).sql_batches(query, as_of=as_of) as reader:
        if fmt != "table":  # streamed as the rows come
            sys.stdout.flush()
            out = sys.stdout.buffer
            try:
                (write_csv if fmt == "csv" else write_json)(reader, out)
                out.flush()
            except BrokenPipeError:  # the reader has all it wants (`stedi sql ... | head`): the query stops
                pass
            return
        shown, total = head(reader, None if show_all else TABLE_ROWS_SHOWN)
    click.echo(render(shown.column_names, rows_of(shown), fmt))
    if shown.num_rows < total:
        _say(f"({shown.num_rows:,} of {total:,} rows shown; --all or --format csv for every row)")


HISTORY_COLUMNS = ["run_id", "command", "started_at", "outcome", "engine", "table_name", "action", "snapshot_id",
                   "rows_in", "rows_out", "seconds", "error"]


@cli.command()
@format_option
@click.option("--table", "table", type=table_names, metavar="TABLE", help="Only this table's rows (and failed runs).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
@as_of_option
@click.pass_obj
def history(obj: Context, fmt: Format, table: str | None, limit: int, as_of: str | None) -> None:
    """What each of the latest runs did to each table, newest first (the table `runs` holds every run)."""
    rows = obj.lakehouse().history(table, limit, as_of=as_of)
    columns = HISTORY_COLUMNS if fmt == "table" else list(rows[0]) if rows else HISTORY_COLUMNS
    click.echo(render(columns, [[r[c] for c in columns] for r in rows], fmt))


@cli.command()
@click.argument("name", callback=_tag_name)
@click.option("--run", "run_id", metavar="RUN_ID", help="Tag the state this run left (default: the current state).")
@format_option
@wait_option
@click.pass_obj
def tag(obj: Context, name: str, run_id: str | None, fmt: Format, wait: float | None) -> None:
    """Name a consistent state NAME: an Iceberg tag on every table (kept by optimize, rewritten by erase)."""
    info = obj.lakehouse(lock_wait=wait).tag(name, run=run_id, progress=_say)
    _emit(fmt, ["tag", "run_id", "tagged_at", "tables"], [[info.name, info.run_id, info.tagged_at, info.tables]],
          f"tagged {plural(info.tables, 'table')} as {info.name}"
          + (f", the state of run {info.run_id}" if info.run_id else ""), sentence=True)


@cli.command()
@format_option
@click.pass_obj
def tags(obj: Context, fmt: Format) -> None:
    """The tags, with the run whose state each names."""
    rows = [[t.name, t.run_id, t.tagged_at, t.tables, "yes" if t.complete else "no (tag it again)", t.erasure]
            for t in obj.lakehouse().tags()]
    click.echo(render(["tag", "run_id", "tagged_at", "tables", "complete", "cleaned_of_erasure"], rows, fmt))


@cli.command()
@click.argument("name")
@format_option
@wait_option
@click.pass_obj
def untag(obj: Context, name: str, fmt: Format, wait: float | None) -> None:
    """Remove tag NAME from every table (its snapshots then expire like any other old one)."""
    count = obj.lakehouse(lock_wait=wait).untag(name, progress=_say)
    _emit(fmt, ["tag", "tables"], [[name, count]], f"removed tag {name} from {plural(count, 'table')}", sentence=True)


@cli.command()
@click.argument("table", type=state_tables, metavar="TABLE")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="A new or empty folder.")
@as_of_option
@format_option
@click.pass_obj
def export(obj: Context, table: str, out: str, as_of: str | None, fmt: Format) -> None:
    """Write TABLE as it stood (default: now) as Parquet files plus manifest.json (snapshot ids, rows, sha256)."""
    manifest = obj.lakehouse().export(table, out, as_of=as_of)
    _emit(fmt, ["file", "rows", "bytes", "sha256"], [[f.path, f.rows, f.bytes, f.sha256] for f in manifest.files],
          f"{manifest.rows:,} rows of {table} ({manifest.state}, snapshot {manifest.snapshot_id}) in "
          f"{plural(len(manifest.files), 'file')}; manifest: {Path(out) / 'manifest.json'}")


@cli.command()
@click.option("--run", "run_id", metavar="RUN_ID", help="Restore the state this run left.")
@click.option("--tag", "tag_name", metavar="NAME", help="Restore the state this tag names.")
@format_option
@wait_option
@click.pass_obj
def rollback(obj: Context, run_id: str | None, tag_name: str | None, fmt: Format, wait: float | None) -> None:
    """Restore every table to a past state as new snapshots (recorded as a run; refused for a state from
    before an erasure)."""
    if (run_id is None) == (tag_name is None):
        raise click.UsageError("give one of --run RUN_ID or --tag NAME")
    report = obj.lakehouse(lock_wait=wait).rollback(run=run_id, tag=tag_name, progress=_say)
    _emit(fmt, ["table", "zone", "status", "rows_out"],
          [[t.table, t.zone, t.status, t.rows_out] for t in report.tables],
          f"restored {plural(sum(t.status == 'restored' for t in report.tables), 'table')} "
          f"(rollback {report.run_id}; `stedi rollback --run` an earlier run undoes it)")


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; beyond 127.0.0.1 every request needs the server's token.")
@click.option("--token", envvar="STEDI_SERVE_TOKEN", metavar="TEXT",
              help="The token requests must carry (env STEDI_SERVE_TOKEN); beyond 127.0.0.1 one is made and "
                   "printed when none is given.")
@click.option("--zones", metavar="ZONES", help="Comma-separated zones whose tables the SQL box may query, e.g. "
              "curated (default: all; landing and trusted hold the personal data).")
@as_of_option
@click.pass_obj
def serve(obj: Context, port: int, host: str, token: str | None, zones: str | None, as_of: str | None) -> None:
    """The report live in a browser, with a read-only SQL box (until Ctrl-C)."""
    from stedi.serve.server import LOOPBACK, ReportServer
    from stedi.tables import ZONES

    shown = frozenset(z.strip() for z in zones.split(",") if z.strip()) if zones is not None else None
    if shown is not None and (not shown or shown - set(ZONES)):
        raise click.BadParameter(f"{zones!r}: give zones among {', '.join(ZONES)}", param_hint="--zones")
    lake = obj.lakehouse()
    lake.state(as_of)  # a lakehouse to serve, and a state that exists: said now, not on the first page
    server = ReportServer(lake, host, port, as_of, say=_say, token=token, zones=shown)
    if host not in LOOPBACK:
        _say(f"warning: listening on {host}: anyone who can reach it and has the token can read "
             + (f"the {', '.join(sorted(shown))} tables" if shown else "every table"))
    _say(f"serving {lake.settings.home} at {server.url} (Ctrl-C stops)")
    if server.token is not None and token is None:
        _say(f"open {server.url}?token={server.token} (the token is shown only now)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


# `warnings` (the sum of the warn rules' matches) stays in the reconciliation table for its history, but is no
# term of the balance: each rule's count is shown apart, under "Quality rules".
RECONCILE_COLUMNS = ["source", "read", "kept", "filtered", "quarantined", "duplicates", "suppressed"]


def _quality_rules(counts: list[list[Any]]) -> None:
    """The block of a run's quality rules that matched records: [source, rule, action, rows] each."""
    matched = [c for c in counts if c[3]]
    if not matched:
        click.echo("\nQuality rules: no landed record matched a rule")
        return
    click.echo("\nQuality rules (landed records each rule matched; warn: kept, rows in `quality_failures`; "
               "quarantine: in `<source>_quarantine`):")
    click.echo(render(["source", "rule", "action", "rows"], matched))


@cli.command()
@format_option
@click.option("--run", "run_id", metavar="RUN_ID", help="A run id (default: the latest run).")
@click.option("--verify", is_flag=True, help="Recount every source from the current tables and fail (exit 1) "
              "if the latest run's figures disagree.")
@click.pass_obj
def reconcile(obj: Context, fmt: Format, run_id: str | None, verify: bool) -> None:
    """Show where every landed record of the latest run went, per source."""
    if verify and run_id is not None:
        raise click.UsageError("--verify checks the latest run's figures against the tables as they are now; "
                               "leave out --run")
    lake = obj.lakehouse()
    figures = lake.verify_reconciliation() if verify else lake.reconcile(run_id)
    if fmt == "json":  # the documented shape: exactly these keys
        keys = ["source", "read", "kept", "filtered", "quarantined", "duplicates"]
        click.echo(render(keys, [[f[k] for k in keys] for f in figures], fmt))
    else:
        click.echo(render([*RECONCILE_COLUMNS, "balanced"], [[f[k] for k in [*RECONCILE_COLUMNS, "balanced"]]
                                                             for f in figures], fmt))
    if fmt == "table" and figures:
        _quality_rules([[r["source"], r["rule"], r["action"], r["rows"]]
                        for r in lake.quality_checks(figures[0]["run_id"])])
        click.echo(f"\nrun {figures[0]['run_id']} at {figures[0]['run_at']}; history: "
                   "`stedi sql \"select * from reconciliation\"`, `stedi sql \"select * from quality_checks\"`")
    if verify:  # on stderr for csv and json: stdout stays theirs
        verified = ("verified: a recount of every source from the current tables gives the same figures "
                    f"(consent_policy = {lake.settings.consent_policy!r})")
        click.echo(verified, err=fmt != "table")


@cli.command()
@format_option
@as_of_option
@click.pass_obj
def tables(obj: Context, fmt: Format, as_of: str | None) -> None:
    """List every table with its zone, row count, last update and snapshot id."""
    rows = [[t.name, t.zone, t.rows if t.built else None, t.updated, t.snapshot_id]
            for t in obj.lakehouse().tables(as_of=as_of)]
    click.echo(render(["table", "zone", "rows", "updated", "snapshot_id"], rows, fmt))


@cli.command()
@click.option("--out", metavar="FILE", default="report.html", show_default=True,
              help="The HTML file to write: a path, or s3://bucket/key.html.")
@as_of_option
@format_option
@click.pass_obj
def report(obj: Context, out: str, as_of: str | None, fmt: Format) -> None:
    """Write one self-contained HTML report: lineage, every table, the consent funnel, quality, the data."""
    started = time.perf_counter()
    where = obj.lakehouse().report(out, as_of=as_of)
    size = _size_of(where)
    seconds = round(time.perf_counter() - started, 1)
    if fmt != "table":
        _emit(fmt, ["file", "bytes", "seconds"], [[where, size, seconds]])
        return
    click.echo(f"wrote {where}" + (f" ({size / 1e6:.1f} MB)" if size else "") + f" in {seconds:.1f} s")


def _size_of(where: str) -> int | None:
    return Path(where).stat().st_size if Path(where).is_file() else None


@cli.command()
@click.argument("table", type=table_names, metavar="TABLE")
@format_option
@as_of_option
@click.pass_obj
def describe(obj: Context, table: str, fmt: Format, as_of: str | None) -> None:
    """Show the schema of TABLE."""
    info = obj.lakehouse().describe(table, as_of=as_of)
    click.echo(render(["column", "type", "description"], [[c.name, c.type, c.doc] for c in info.columns], fmt))
    if fmt == "table":
        state = (f"{info.rows:,} rows, snapshot {info.snapshot_id}" if info.built
                 else "not built yet" if as_of is None else "not built in that state")
        click.echo(f"\n{info.name} ({info.zone}): {info.doc} [{state}]")


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Key file (default: pseudonym_key_file, "
              "else ~/.config/stedi/pseudonym.key).")
@click.option("--if-missing", is_flag=True, help="Do nothing (exit 0) when the key file exists already.")
@format_option
@click.pass_obj
def keygen(obj: Context, out: str | None, if_missing: bool, fmt: Format) -> None:
    """Create the secret key of the pseudonyms in machine_learning_curated (never overwrites one)."""
    from stedi.privacy.keys import key_file
    from stedi.privacy.keys import keygen as make_key

    lake = obj.lakehouse()
    target = Path(out) if out else key_file(lake.settings)
    if if_missing and target.expanduser().exists():
        _emit(fmt, ["key_file", "created"], [[str(target), False]], f"a pseudonym key exists already at {target}",
              sentence=True)
        return
    path = make_key(lake.settings, target)
    _emit(fmt, ["key_file", "created"], [[str(path), True]],
          f"wrote a new pseudonym key to {path} (readable by you only). Keep it secret and keep a copy: the same "
          "key gives the same customer_key values; a lost key cannot be recovered."
          + (f"\npoint stedi at it with `pseudonym_key_file = \"{path}\"` in stedi.toml" if out else ""),
          sentence=True)


@cli.command()
@click.option("--email", "emails", multiple=True, metavar="ADDRESS", help="A person to erase (repeatable).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False),
              help="A file with one email address per line.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed, and change nothing.")
@format_option
@wait_option
@click.pass_obj
def erase(obj: Context, emails: tuple[str, ...], file: str | None, dry_run: bool, fmt: Format,
          wait: float | None) -> None:
    """Erase people everywhere under the lakehouse root: landed files, every table, old snapshots."""
    addresses = list(emails)
    if file:
        addresses += [x.strip() for x in Path(file).read_text(encoding="utf-8").splitlines() if x.strip()]
    if not addresses:
        raise click.UsageError("name at least one person: --email ADDRESS or --file FILE")
    lake = obj.lakehouse(lock_wait=wait)
    if dry_run:
        plan = lake.erasure_plan(addresses)
        rows = [[f"landed {source} records", n] for source, n in sorted(plan.landed_records.items())]
        rows += [[f"{table} rows", n] for table, n in plan.rows.items()]
        click.echo(render(["would remove", "count"], rows, fmt))
        if fmt == "table":
            matched = sum(plan.landed_records.values())
            click.echo(f"dry run, nothing changed: {plural(plan.people, 'person', 'people')}, "
                       f"{plural(matched, 'landed record')} matched in {plural(plan.landed_files, 'file')}, "
                       f"{plural(plan.devices, 'device')} of theirs"
                       + (f"; {plan.unmatched} of them match no landed record" if plan.unmatched else ""))
        return
    receipt = lake.erase(addresses, progress=_say)
    click.echo(render(["table", "rows_removed"], sorted(receipt.rows_removed.items()), fmt))
    if receipt.traces_left:
        left = receipt.traces_left
        raise ErasureError(f"erasure {receipt.receipt_id} finished, but {plural(len(left), 'file')} stedi does not "
                           f"manage still name{'s' if len(left) == 1 else ''} them (e.g. {left[0]}): delete them")
    if fmt == "table":
        if receipt.landed_records_removed == 0 and not any(receipt.rows_removed.values()):
            who = "this person" if receipt.people == 1 else f"these {receipt.people} people"
            click.echo(f"0 records matched: no landed record names {who}; kept out of later deliveries all the "
                       f"same (receipt {receipt.receipt_id} in {receipt.audit_log})")
            return
        unmatched = (f" ({receipt.unmatched} of them matched no record, and are kept out of later deliveries)"
                     if receipt.unmatched else "")
        click.echo(f"erased {plural(receipt.people, 'person', 'people')}{unmatched}: "
                   f"{plural(receipt.landed_records_removed, 'landed record')} removed from "
                   f"{plural(receipt.files_rewritten, 'file')}, {plural(receipt.files_deleted, 'old table file')} "
                   f"deleted; receipt {receipt.receipt_id} in {receipt.audit_log}")
        if receipt.tags_rewritten:
            click.echo(f"tagged states rewritten without them: {', '.join(receipt.tags_rewritten)}")


@cli.command()
@click.option("--retention-days", type=click.FloatRange(min=0), default=None,
              help="Expire snapshots older than this (default: snapshot_retention_days, 7).")
@click.option("--grace-minutes", type=click.FloatRange(min=0), default=None,
              help="Keep snapshots that were current, and files written, less than this long ago: a reader may "
                   "still be using them (default: optimize_grace_minutes, 60).")
@format_option
@wait_option
@click.pass_obj
def optimize(obj: Context, retention_days: float | None, grace_minutes: float | None, fmt: Format,
             wait: float | None) -> None:
    """Compact small table files and expire old snapshots (and the files only they used)."""
    reports = obj.lakehouse(lock_wait=wait).optimize(retention_days=retention_days, grace_minutes=grace_minutes,
                                                     progress=_say)
    click.echo(render(["table", "files_before", "files_after", "snapshots_expired", "files_deleted", "mb_freed"],
                      [(r.table, r.files_before, r.files_after, r.snapshots_expired, r.files_deleted,
                        round(r.bytes_deleted / 1e6, 2)) for r in reports], fmt))


@cli.command()
@format_option
@wait_option
@click.pass_obj
def attach(obj: Context, fmt: Format, wait: float | None) -> None:
    """Register the tables this root holds in the catalog: after the lakehouse was copied or moved, or its
    catalog was lost or is stale (tables whose files are gone are forgotten; `stedi run` rebuilds them)."""
    reports = obj.lakehouse(lock_wait=wait).attach(progress=_say)
    click.echo(render(["table", "action", "rows", "location"], [[r.table, r.action, r.rows, r.location]
                                                                 for r in reports], fmt))


@cli.command()
@click.option("--out", default="ddl/athena", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write the .sql files into.")
@click.option("--location", default="s3://stedi-lakehouse", show_default=True,
              help="Bucket (and prefix) the tables live under.")
@format_option
def ddl(out: str, location: str, fmt: Format) -> None:
    """Write the Athena / Glue DDL of every table (one .sql file per table)."""
    from stedi.ddl import write_ddl

    paths = write_ddl(Path(out), location)
    _emit(fmt, ["file"], [[str(p)] for p in paths], f"wrote {plural(len(paths), 'file')} into {out}")



@cli.group(cls=Group)
def deploy() -> None:
    """Write what a cloud account needs to run stedi (templates to review and apply; nothing is called)."""


@deploy.command("aws")
@click.option("--bucket", required=True, help="The S3 bucket of the lakehouse (created by the stack unless "
              "--existing-bucket).")
@click.option("--prefix", default="", help="The lakehouse root's prefix in the bucket (default: its top).")
@click.option("--schedule", metavar="CRON", help="When the Glue job runs, AWS's cron with six fields "
              "[default: cron(0 2 * * ? *), every day at 02:00 UTC].")
@click.option("--out", default="deploy/aws", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write the template, the job's parameters and script, and the next steps into.")
@click.option("--region", help="The AWS region, for the commands in the next steps (default: the AWS CLI's).")
@click.option("--existing-bucket", is_flag=True, help="The bucket exists already: the stack does not create it.")
@click.option("--bundle/--no-bundle", default=True, show_default=True,
              help="Build the job's zip of wheels (stedi and what Glue 5.0 lacks, from the lock; needs the package "
              "index once, here). --no-bundle writes the rest and keeps a bundle already in --out.")
@click.option("--upload", is_flag=True, help="Then put the zip of wheels and the job's script into the bucket "
              "(credentials and endpoint as for an s3:// root).")
@format_option
@click.pass_obj
def deploy_aws(ctx: Context, bucket: str, prefix: str, schedule: str | None, out: str, region: str | None,
               existing_bucket: bool, bundle: bool, upload: bool, fmt: Format) -> None:
    """A CloudFormation template running stedi as a scheduled AWS Glue 5.0 job, and the zip of wheels the job
    installs (docs/aws.md)."""
    from stedi.deploy import aws
    from stedi.deploy.deployment import deployment

    try:
        target = deployment(bucket, prefix, schedule, region, existing_bucket)
    except ConfigError as exc:  # a bad option value: a usage error
        raise click.UsageError(str(exc)) from None
    written = aws.write(target, Path(out), bundle=bundle, progress=_say)
    rows = [[str(p), ""] for p in written]
    if upload:
        from stedi.storage.s3 import connection

        settings = ctx.settings()
        rows += [[str(Path(out) / name), uri] for name, uri in
                 zip((aws.BUNDLE_FILE, aws.SCRIPT_FILE), aws.upload(target, Path(out), connection(settings.s3),
                                                                     progress=_say), strict=True)]
    _emit(fmt, ["file", "uploaded_to"], rows)
    then = "start the schedule" if upload else "upload the job's script and wheels, start the schedule"
    _say(f"next: the commands in {Path(out) / aws.STEPS_FILE} (deploy the stack, {then})")

def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    _Voice.level, _Voice.started = 0, time.perf_counter()
    try:
        cli.main(args=argv, prog_name="stedi", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error("interrupted: whatever was committed before stays consistent; run the command again to finish")
        sys.exit(130)
    except click.UsageError as exc:  # one line, as every error; the help is one option away
        where = exc.ctx.command_path if exc.ctx else "stedi"
        _error(f"error: {' '.join(exc.format_message().split())} (`{where} --help` for help)")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error(f"error: {' '.join(exc.format_message().split())}")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if _interrupted(exc):  # Ctrl-C, as DuckDB reports it from a statement it stopped
            _error("interrupted: whatever was committed before stays consistent; run the command again to finish")
            sys.exit(130)
        full = _disk_full(exc)
        if full:
            _error(f"error: no space left on the device ({full}); free some space (the lakehouse root, its scratch "
                 "folder, or the temporary folder) and run the command again: commits are atomic, so every table "
                 "is as it was before or complete")
        elif isinstance(exc, StediError):
            _error(f"error: {exc}")
        else:  # a bug: still one line, the trace under --debug
            _error(f"error: internal error ({type(exc).__name__}: {_first_line(exc)}); rerun with --debug and "
                 "report it")
        sys.exit(1)
    sys.exit(0)


def _disk_full(exc: BaseException) -> str | None:
    """The message of a full disk or an exceeded quota anywhere in the chain of `exc`, else None."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if (isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT)) or \
                any(sign in text for sign in ("No space left on device", "Disk quota exceeded",
                                              "database or disk is full")):
            return _first_line(current)
        current = current.__cause__ or current.__context__
    return None


def _interrupted(exc: BaseException) -> bool:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, RuntimeError) and str(current) == "Query interrupted":
            return True
        current = current.__cause__ or current.__context__
    return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def console() -> NoReturn:
    """The `stedi` command: `main()`, then an exit without the interpreter's teardown.

    Freeing pyiceberg's, pyarrow's and DuckDB's modules object by object takes about 0.3 s after the
    work is done. By then every file is written, every commit made and every connection closed, so the
    process ends at once: exit handlers run and the output is flushed, nothing else is skipped."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            _say(exc.code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`stedi ... | head`): nothing more to say
            pass
    os._exit(code)
