"""A shared catalog ([catalog] in the settings: Glue, REST, SQL on a server): which of its tables are stedi's.

The embedded catalog is stedi's alone (stedi.iceberg.catalog.check_locations and `stedi attach` keep it in
line with the root). A shared catalog is not: its database `stedi` may hold, under a stedi table's name,

- a registration whose metadata is gone (the bucket emptied or recreated, the file deleted): stale;
- the table of another lakehouse that registered its tables in the same database (one Glue database
  `stedi` per account and region), at another root;
- a table another tool made: a Hive table of Athena DDL (the reference project's `customer_landing.sql`),
  an Iceberg table of Spark or Athena.

stedi uses a table only if it is its own: an Iceberg table that stedi made (it carries the property
`stedi.zone`) under this lakehouse's warehouse (the root's `warehouse/`, or the `warehouse` in [catalog]).
Any other stops the command, reader or writer, with one line naming the table, where it is, and the fix:
stedi never reads another lakehouse's rows as its own, never writes into a table that is not its own, and
never drops one (that is the user's call, with the catalog's own tools).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

from stedi.config import NAMESPACE
from stedi.errors import CatalogError
from stedi.storage.files import local_path

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table as IcebergTable

    from stedi.config import Settings
    from stedi.tables import Table

ZONE = "stedi.zone"  # table property: stedi made the table (set since stedi's first version)


def is_under(uri: str, base: str) -> bool:
    """Whether a location lies under `base` (an s3:// URI, or a local path or file:// URI)."""
    if "://" in base and not base.startswith("file://"):
        return uri.replace("s3a://", "s3://", 1).startswith(base.replace("s3a://", "s3://", 1).rstrip("/") + "/")
    if "://" in uri and not uri.startswith("file://"):
        return False
    return os.path.realpath(local_path(uri)).startswith(os.path.realpath(local_path(base)) + os.sep)


def warehouses(settings: Settings) -> list[str]:
    """Where this lakehouse's tables may be: the root's warehouse/, and a warehouse [catalog] names (a REST
    catalog's `warehouse` may be a name rather than a location: only a location counts)."""
    found = [settings.warehouse_uri]
    configured = str(settings.catalog.get("warehouse", ""))
    if ("://" in configured or configured.startswith("/")) and configured.rstrip("/") != found[0]:
        found.append(configured.rstrip("/"))
    return found


def is_ours(settings: Settings, uri: str) -> bool:
    return any(is_under(uri, base) for base in warehouses(settings))


def check_own(settings: Settings, table: Table, ice: IcebergTable) -> None:
    """Refuse a table of the shared catalog that is not this lakehouse's own (see the module docstring)."""
    from stedi.iceberg.schema import iceberg_schema

    location = ice.location()
    if not (is_ours(settings, location) and is_ours(settings, ice.metadata_location)):
        raise CatalogError(
            f"table {table.name} in {_catalog(settings)} is at {location}, not under this lakehouse's warehouse "
            f"({' or '.join(warehouses(settings))}): another lakehouse registered its tables in the same database "
            f"`{NAMESPACE}`, and stedi never reads or writes another lakehouse's table. Use that lakehouse's root "
            f"as home, or a catalog of its own for this one; drop the table ({_drop(settings, table)}) only if "
            "that lakehouse is gone for good")
    if ZONE not in ice.properties:
        have = [(f.name, str(f.field_type)) for f in ice.schema().fields]
        want = [(f.name, str(f.field_type)) for f in iceberg_schema(table.columns).fields]
        raise CatalogError(
            f"table {table.name} in {_catalog(settings)} is an Iceberg table that stedi did not make (at {location}, "
            f"without the property {ZONE}" + ("" if have == want else "; its columns are not stedi's") + "): stedi "
            f"never replaces a table it did not make. Rename it, move it to a database of its own, or drop it "
            f"({_drop(settings, table)}), then run again")


def not_iceberg(settings: Settings, iceberg: Catalog, table: Table, exc: Exception) -> CatalogError:
    """The error for a table of that name that is not an Iceberg table (pyiceberg cannot load it)."""
    what = _first_line(exc)
    glue = _glue_client(iceberg)
    if glue is not None:
        found = glue.get_table(DatabaseName=NAMESPACE, Name=table.name)["Table"]
        kind = found.get("TableType") or "table without a TableType"
        what = f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind} at {found.get('StorageDescriptor', {}).get('Location')}"
    return CatalogError(
        f"table {table.name} in {_catalog(settings)} is not an Iceberg table ({what}): stedi never replaces a "
        f"table it did not make. Move it to a database of its own (e.g. `stedi_raw`, as docs/aws.md does for the "
        f"landing JSON) or drop it ({_drop(settings, table)}; dropping an external table deletes none of its "
        "files), then run again")


def stale(settings: Settings, what: str, table: Table | None, exc: Exception) -> CatalogError:
    """The error for metadata the catalog names that is not there (deleted, or the bucket emptied)."""
    quoted = re.search(r"'([^']+)'", str(exc))
    missing = quoted.group(1) if quoted else _first_line(exc)
    if settings.remote and quoted and "://" not in missing:
        missing = f"s3://{missing}"  # pyarrow names an object as bucket/key
    fix = (f"drop the table from the catalog ({_drop(settings, table)}) and run `stedi run`, which builds it again "
           "from the landing zone" if table is not None else "drop the tables whose files are gone from the catalog "
           "with its own tools, and run `stedi run`")
    return CatalogError(f"cannot use {what}: {_catalog(settings)} names a file that is not there: {missing} (it was "
                        f"deleted, or the bucket emptied or recreated). Restore it, or {fix}")


def check_placement(settings: Settings, iceberg: Catalog, table: Table) -> None:
    """Refuse to create a table where its database's location puts it outside this lakehouse's warehouse.

    A catalog places a new table at `<database location>/<table>` when the database has a location (e.g. one
    `stedi deploy aws` made for another root), else under its warehouse (this lakehouse's by default)."""
    database = iceberg.load_namespace_properties(NAMESPACE).get("location")
    if not database:
        return
    location = f"{database.rstrip('/')}/{table.name}"
    if not is_ours(settings, location):
        raise CatalogError(
            f"{_catalog(settings)} would create table {table.name} at {location}, under the location of its "
            f"database `{NAMESPACE}` ({database}), not under this lakehouse's warehouse "
            f"({' or '.join(warehouses(settings))}): the database is another lakehouse's, and stedi never writes "
            "outside the root in use. Use that lakehouse's root as home, or a catalog of its own for this one; if "
            f"this lakehouse's tables are meant to be there, say so in [catalog]: warehouse = \"{database}\"")


def table_locations(iceberg: Catalog) -> dict[str, str]:
    """{table name: location} of every table in stedi's namespace, Iceberg or not, readable or not.

    A Glue database is listed through Glue itself (one request, no metadata read, and other tools' tables
    included); any other catalog by loading each table's metadata."""
    glue = _glue_client(iceberg)
    if glue is None:
        return {name: metadata.rsplit("/metadata/", 1)[0] for name, metadata in registered_locations(iceberg).items()}
    found = {}
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=NAMESPACE):
        for entry in page["TableList"]:
            metadata = entry.get("Parameters", {}).get("metadata_location")
            location = metadata.rsplit("/metadata/", 1)[0] if metadata else \
                entry.get("StorageDescriptor", {}).get("Location", "")
            if location:
                found[entry["Name"]] = location
    return found


def _glue_client(iceberg: Catalog) -> Any:
    """The boto3 Glue client of pyiceberg's GlueCatalog, or None for another catalog. (pyiceberg.catalog.glue
    imports boto3: it is only looked for among the modules a Glue catalog has loaded.)"""
    glue = sys.modules.get("pyiceberg.catalog.glue")
    return iceberg.glue if glue is not None and isinstance(iceberg, glue.GlueCatalog) else None


def _catalog(settings: Settings) -> str:
    return f"the {settings.catalog.get('type', 'configured')} catalog"


def _drop(settings: Settings, table: Table | None) -> str:
    if str(settings.catalog.get("type", "")).lower() == "glue" and table is not None:
        return f"`aws glue delete-table --database-name {NAMESPACE} --name {table.name}`"
    return "with the catalog's own tools"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def registered_locations(catalog: Catalog) -> dict[str, str]:
    """{table name: metadata location} of the tables in stedi's namespace."""
    from pyiceberg.exceptions import NoSuchNamespaceError

    from stedi.iceberg.sqlite import SqliteCatalog

    if isinstance(catalog, SqliteCatalog):
        return catalog.metadata_locations(NAMESPACE)
    try:
        return {ident[-1]: catalog.load_table(ident).metadata_location for ident in catalog.list_tables(NAMESPACE)}
    except NoSuchNamespaceError:
        return {}


def registered_names(catalog: Catalog) -> set[str]:
    """The names of the tables in stedi's namespace (one query or listing: no table is loaded)."""
    from pyiceberg.exceptions import NoSuchNamespaceError

    from stedi.iceberg.sqlite import SqliteCatalog

    if isinstance(catalog, SqliteCatalog):
        return set(catalog.metadata_locations(NAMESPACE))
    try:
        return {ident[-1] for ident in catalog.list_tables(NAMESPACE)}
    except NoSuchNamespaceError:
        return set()
