"""Publish the serving copy of the warehouse: `python -m ml.publish`.

Analysts and BI tools never read the warehouse dbt writes (`warehouse/ecommerce.duckdb`):
a build holds its write lock for minutes and passes through half-built states. After a
successful `dbt build`, this step copies the public tables into

- a read-only DuckDB file, `warehouse/serving.duckdb`, written in an older storage format
  (`STORAGE_VERSION`, default v1.0.0) so the DuckDB drivers bundled with BI tools open it;
- Parquet files, one per table, under `warehouse/exports/<publish id>/`, with the symlink
  `warehouse/exports/current` pointing at the latest complete export.

Which tables are public is decided in dbt, not here: every model whose config has
`meta: {serve: true}` (set per folder in dbt_project.yml for models/marts and models/ml),
minus the training models the model registry reads (the inputs of macro
`ml_training_runs`, i.e. var `ml_training_models`), minus any model or column that sets
`meta: {serve: false}` itself. A new mart or score table in those folders is published
without touching this module.

Guarantees:

- A failed build publishes nothing. `target/run_results.json` must come from `dbt build`
  with every node `success`, `pass` or `warn`, and every public model must have been
  built in it; otherwise this exits non-zero with the reason and leaves the old copy.
- Readers are never blocked and never see a half-built copy. The new file is written
  beside the old one under a temporary name, made read-only (0444) and renamed over it
  (`os.replace`, atomic on POSIX). A reader that has the old file open keeps reading
  the old inode, a consistent snapshot, until it reconnects. Parquet exports are written
  into a new folder and `current` is switched by renaming a new symlink over it.
- The copy is taken in one read-only transaction on the warehouse, so it is one
  consistent state of it. The warehouse cannot be opened while a build writes it: run
  this after the build, not during it (a clear error says so).
- With `REES46_USER_ID_SALT` set (off by default), every `user_id` column, every column
  tagged `pii` or with `meta: {pseudonymise: true}`, and the keys that would give the user
  id back (USER_LINKED_KEYS) are replaced by salted SHA-256 pseudonyms (`pseudonym()`):
  integer ids stay BIGINT, other keys become hex strings, each the same for the same
  value in every table and every publish with the same salt, so BI joins keep working.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import duckdb

DEFAULT_WAREHOUSE = "warehouse/ecommerce.duckdb"
DEFAULT_SERVING = "warehouse/serving.duckdb"
DEFAULT_EXPORTS = "warehouse/exports"
DEFAULT_STORAGE_VERSION = "v1.0.0"
SALT_ENV = "REES46_USER_ID_SALT"
MIN_SALT_LENGTH = 16
SERVE_META_KEY = "serve"
# The macro through which the registry models read the training models.
REGISTRY_INPUT_MACRO = "macro.rees46.ml_training_runs"
OK_STATUSES = frozenset({"success", "pass", "warn"})
# Nodes that `dbt build` lists without running anything: "no-op" is their success.
NO_OP_RESOURCE_TYPES = ("exposure.", "saved_query.")
# Published beside the tables: what was published, from which build, when.
CATALOG_TABLE = "serving_tables"
CURRENT_LINK = "current"
PSEUDONYM_HEX_DIGITS = 15  # 60 bits: a non-negative BIGINT
_USER_ID_COLUMN = re.compile(r"(^|_)user_id$")
# Keys computed from the user id: session_id and event_id (so purchase_id) are md5
# surrogate keys over user_id and columns published beside them, so without the salt
# anyone could hash every candidate user id until one reproduces a published key.
# raw_session_id (the source system's session id) links a row to the raw logs. When
# pseudonymising, these are re-keyed with the same salt.
USER_LINKED_KEYS = frozenset({"session_id", "raw_session_id", "event_id", "purchase_id"})
_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                            "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})


class PublishError(RuntimeError):
    """A reason not to publish. Nothing was changed; the previous copy stays in place."""


@dataclass(frozen=True)
class PublicTable:
    """A model to publish: where it lives in the warehouse and what to leave out."""
    unique_id: str
    name: str                         # the table name in the serving copy (dbt alias)
    schema: str                       # the relation in the warehouse
    identifier: str
    database: str                     # dbt's database name: the warehouse file's stem
    description: str
    excluded_columns: frozenset[str]  # columns with meta serve: false
    pii_columns: frozenset[str]       # tagged pii, or meta pseudonymise: true


@dataclass(frozen=True)
class Publication:
    """What one publish wrote."""
    publish_id: str
    serving_path: Path
    export_dir: Path
    tables: dict[str, int]            # table -> rows
    pseudonymised_columns: dict[str, list[str]]
    storage_version: str


# --- which tables are public (from dbt's manifest) ---------------------------------------

def _meta(config_holder: dict) -> dict:
    """A node's or column's meta: dbt keeps it at `meta` and, resolved, at `config.meta`."""
    return {**(config_holder.get("meta") or {}),
            **((config_holder.get("config") or {}).get("meta") or {})}


def _tags(config_holder: dict) -> set[str]:
    return {*(config_holder.get("tags") or []),
            *((config_holder.get("config") or {}).get("tags") or [])}


def registry_inputs(manifest: dict) -> set[str]:
    """Unique ids of the training models: what the registry models read through the macro
    `ml_training_runs` (the models listed in var `ml_training_models`)."""
    inputs: set[str] = set()
    for node in manifest["nodes"].values():
        if REGISTRY_INPUT_MACRO in (node.get("depends_on") or {}).get("macros", []):
            inputs.update(node["depends_on"].get("nodes", []))
    return inputs


def _descendants(manifest: dict, roots: set[str]) -> set[str]:
    child_map = manifest.get("child_map") or {}
    seen, queue = set(roots), deque(roots)
    while queue:
        for child in child_map.get(queue.popleft(), []):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def select_nodes(manifest: dict, spec: str) -> set[str]:
    """Unique ids matched by a dbt-like selector: `name`, `tag:name`, with an optional
    trailing `+` for the node's descendants too (as in `--exclude tag:ml+`)."""
    with_children = spec.endswith("+")
    base = spec.rstrip("+")
    if base.startswith("tag:"):
        tag = base.removeprefix("tag:")
        roots = {uid for uid, node in manifest["nodes"].items() if tag in _tags(node)}
    else:
        roots = {uid for uid, node in manifest["nodes"].items()
                 if node.get("name") == base and node["resource_type"] == "model"}
    if not roots:
        raise PublishError(f"selector {spec!r} matches no model of the manifest")
    return _descendants(manifest, roots) if with_children else roots


def public_tables(manifest: dict, select: Sequence[str] = (),
                  exclude: Sequence[str] = ()) -> list[PublicTable]:
    """The models to publish, sorted by name.

    Public: an enabled model with `meta.serve` true that is not a registry input (a
    training model). `select` (if given) keeps only models matched by one of its
    selectors; `exclude` drops matched models. Raises PublishError for an ephemeral public
    model (nothing to copy), a clash of table names, or an empty result.
    """
    training = registry_inputs(manifest)
    selected = set().union(*(select_nodes(manifest, s) for s in select)) if select else None
    excluded = set().union(*(select_nodes(manifest, s) for s in exclude)) if exclude else set()
    tables: dict[str, PublicTable] = {}
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or not _meta(node).get(SERVE_META_KEY):
            continue
        if uid in training or uid in excluded or (selected is not None
                                                  and uid not in selected):
            continue
        config = node.get("config") or {}
        if config.get("materialized") == "ephemeral":
            raise PublishError(f"{uid} is marked serve: true but is ephemeral (no relation "
                               "to copy); materialise it or set serve: false")
        name = node.get("alias") or node["name"]
        if name in tables or name == CATALOG_TABLE:
            raise PublishError(f"two public models would both be published as {name!r}")
        columns = node.get("columns") or {}
        tables[name] = PublicTable(
            unique_id=uid,
            name=name,
            schema=node["schema"],
            identifier=node.get("alias") or node["name"],
            database=node["database"],
            description=(node.get("description") or "").strip(),
            excluded_columns=frozenset(
                column for column, spec in columns.items()
                if _meta(spec).get(SERVE_META_KEY) is False),
            pii_columns=frozenset(
                column for column, spec in columns.items()
                if "pii" in _tags(spec) or _meta(spec).get("pseudonymise") is True),
        )
    if not tables:
        raise PublishError("no model is public: set meta: {serve: true} in dbt_project.yml")
    return [tables[name] for name in sorted(tables)]


# --- was the last build a success ---------------------------------------------------------

def check_build(run_results: dict, tables: Iterable[PublicTable]) -> None:
    """Raise PublishError unless `run_results` is a `dbt build` in which every node
    succeeded, passed or warned, and every public table was built successfully."""
    command = (run_results.get("args") or {}).get("which")
    if command != "build":
        raise PublishError(
            f"the last dbt command in the target folder was `dbt {command}`, not "
            "`dbt build`: run `dbt build` (it tests what it builds) before publishing")
    failed = sorted(f"{result['unique_id']} ({result['status']})"
                    for result in run_results["results"]
                    if not _succeeded(result))
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more"
                                          if len(failed) > 10 else "")
        raise PublishError(f"the last dbt build did not succeed: {len(failed)} node(s) "
                           f"failed, errored or were skipped: {shown}")
    built = {result["unique_id"] for result in run_results["results"]}
    missing = sorted(table.unique_id for table in tables if table.unique_id not in built)
    if missing:
        raise PublishError(
            "these public models were not built by the last dbt build: "
            + ", ".join(missing)
            + ". Build them, or leave them out with --exclude (e.g. --exclude tag:ml+ "
            "after `dbt build --exclude tag:ml+`)")


def _succeeded(result: dict) -> bool:
    return result["status"] in OK_STATUSES or (
        result["status"] == "no-op" and result["unique_id"].startswith(NO_OP_RESOURCE_TYPES))


def check_database(warehouse: Path, tables: Iterable[PublicTable]) -> None:
    """The manifest names the warehouse's file stem as its database; refuse another file."""
    names = {table.database for table in tables}
    if names != {warehouse.stem}:
        raise PublishError(f"the last build wrote database {sorted(names)}, not "
                           f"{warehouse} (database {warehouse.stem!r})")


# --- pseudonymisation ---------------------------------------------------------------------

def salt_from_env(environ: dict[str, str] | os._Environ = os.environ) -> str | None:
    """The salt of REES46_USER_ID_SALT, None when unset or empty (pseudonymisation off).

    A set salt shorter than MIN_SALT_LENGTH is refused: user ids are short integers, so
    anyone with a guessable salt could hash every id and reverse the pseudonyms.
    """
    salt = environ.get(SALT_ENV) or None
    if salt is not None and len(salt) < MIN_SALT_LENGTH:
        raise PublishError(f"{SALT_ENV} is set but shorter than {MIN_SALT_LENGTH} "
                           "characters; use a long random secret (e.g. openssl rand -hex 32)")
    return salt


def pseudonym(value: object, salt: str, integer: bool = True) -> int | str:
    """The published pseudonym of `value`: SHA-256(salt + ":" + str(value)), as an
    integer of its first 60 bits for an integer id (a non-negative BIGINT), else as the
    64-character hex digest.

    The same function as the SQL of `column_expression`, for whoever holds the salt and
    must find one user's rows (e.g. a data-subject request).
    """
    digest = hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()
    return int(digest[:PSEUDONYM_HEX_DIGITS], 16) if integer else digest


def is_pseudonymised(column: str, table: PublicTable) -> bool:
    """A `user_id` column (or one ending in `_user_id`), a key that would give the user id
    back (USER_LINKED_KEYS), or a column tagged pii or with meta pseudonymise: true."""
    name = column.lower()
    return (bool(_USER_ID_COLUMN.search(name)) or name in USER_LINKED_KEYS
            or column in table.pii_columns)


def column_expression(column: str, pseudonymise: bool, data_type: str = "BIGINT") -> str:
    """The select-list item that publishes `column`, pseudonymised or as is.

    Integer columns become the BIGINT pseudonym, others the hex string (see
    `pseudonym`). The salt is read from the session variable `rees46_user_id_salt`,
    never written into the SQL text.
    """
    quoted = '"' + column.replace('"', '""') + '"'
    if not pseudonymise:
        return quoted
    digest = (f"sha256(getvariable('rees46_user_id_salt') || ':' || "
              f"cast({quoted} as varchar))")
    if data_type.upper() in _INTEGER_TYPES:
        return (f"cast('0x' || left({digest}, {PSEUDONYM_HEX_DIGITS}) as bigint) "
                f"as {quoted}")
    return f"{digest} as {quoted}"


# --- writing ------------------------------------------------------------------------------

def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def new_publish_id(now: datetime, invocation_id: str) -> str:
    """A sortable, unique id: UTC time of the publish (to the microsecond; publishes
    are serialised by a lock) and the start of the build's invocation id."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{invocation_id[:8]}"


@contextmanager
def _publish_lock(serving: Path) -> Iterator[None]:
    """One publisher at a time per serving copy (an advisory lock beside it)."""
    lock_path = serving.with_name(f".{serving.name}.publish.lock")
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishError(f"another publish of {serving} is running") from None
        yield


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_serving_database(warehouse: Path, target: Path, tables: Sequence[PublicTable],
                           salt: str | None, storage_version: str, publish_id: str,
                           build: dict, memory_limit: str | None = None
                           ) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Copy `tables` from `warehouse` (opened read-only) into a new DuckDB file `target`.

    One transaction reads every table, so the copy is one state of the warehouse. Table
    and column comments (dbt's persist_docs) are copied, and the table CATALOG_TABLE lists
    what was published. Returns ({table: rows}, {table: [pseudonymised columns]}).
    """
    if target.exists():
        raise PublishError(f"{target} already exists")
    con = duckdb.connect()
    try:
        if memory_limit:
            con.execute(f"set memory_limit = {_sql_string(memory_limit)}")
        con.execute("set preserve_insertion_order = false")
        try:
            con.execute(f"attach {_sql_string(str(warehouse))} as source (read_only)")
        except duckdb.IOException as error:
            raise PublishError(
                f"cannot open the warehouse {warehouse} read-only ({error}). Is a dbt build "
                "running? Publish after it has finished.") from error
        con.execute(f"attach {_sql_string(str(target))} as serving "
                    f"(storage_version {_sql_string(storage_version)})")
        if salt is not None:
            con.execute("set variable rees46_user_id_salt = ?", [salt])
        rows: dict[str, int] = {}
        hashed: dict[str, list[str]] = {}
        con.execute("begin transaction")
        for table in tables:
            columns = con.execute(
                "select column_name, comment, data_type from duckdb_columns() where "
                "database_name = 'source' and schema_name = ? and table_name = ? "
                "order by column_index", [table.schema, table.identifier]).fetchall()
            if not columns:
                raise PublishError(f"{table.unique_id}: no relation {table.schema}."
                                   f"{table.identifier} in {warehouse}")
            kept = [(name, comment, data_type) for name, comment, data_type in columns
                    if name not in table.excluded_columns]
            hashed[table.name] = [name for name, _, _ in kept
                                  if salt is not None and is_pseudonymised(name, table)]
            select_list = ",\n    ".join(
                column_expression(name, name in hashed[table.name], data_type)
                for name, _, data_type in kept)
            con.execute(
                f"create table serving.main.{_ident(table.name)} as select\n    "
                f"{select_list}\nfrom source.{_ident(table.schema)}.{_ident(table.identifier)}")
            comment = con.execute(
                "select comment from duckdb_tables() where database_name = 'source' and "
                "schema_name = ? and table_name = ? union all select comment from "
                "duckdb_views() where database_name = 'source' and schema_name = ? and "
                "view_name = ?",
                [table.schema, table.identifier] * 2).fetchall()
            table_comment = (comment[0][0] if comment and comment[0][0]
                             else table.description)
            if table_comment:
                con.execute(f"comment on table serving.main.{_ident(table.name)} is "
                            f"{_sql_string(table_comment)}")
            for name, column_comment, _ in kept:
                text = column_comment or ""
                if name in hashed[table.name]:
                    text = (text + " " if text else "") + (
                        "Pseudonymised at publish: a salted SHA-256 of the value, the "
                        "same in every table (see README, pseudonymisation).")
                if text:
                    con.execute(
                        f"comment on column serving.main.{_ident(table.name)}."
                        f"{_ident(name)} is {_sql_string(text)}")
            [(count,)] = con.execute(
                f"select count(*) from serving.main.{_ident(table.name)}").fetchall()
            rows[table.name] = count
        published_at = datetime.now(timezone.utc).replace(tzinfo=None)
        con.execute(
            f"create table serving.main.{CATALOG_TABLE} (table_name varchar, "
            "dbt_unique_id varchar, row_count bigint, pseudonymised_columns varchar[], "
            "publish_id varchar, published_at timestamp, dbt_invocation_id varchar, "
            "dbt_build_finished_at varchar, storage_version varchar)")
        con.executemany(
            f"insert into serving.main.{CATALOG_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[table.name, table.unique_id, rows[table.name], hashed[table.name], publish_id,
              published_at, build.get("invocation_id"), build.get("generated_at"),
              storage_version] for table in tables])
        con.execute(
            f"comment on table serving.main.{CATALOG_TABLE} is "
            + _sql_string("One row per published table: rows, pseudonymised columns, "
                          "and the publish and dbt build it comes from."))
        con.execute("commit")
        con.execute("detach serving")
    finally:
        con.close()
    return rows, hashed


def write_parquet_exports(serving: Path, export_dir: Path, tables: Iterable[str]) -> None:
    """One zstd Parquet file per table of the serving file, into a new `export_dir`."""
    export_dir.mkdir(parents=True)
    with duckdb.connect(str(serving), read_only=True) as con:
        for table in [*tables, CATALOG_TABLE]:
            path = export_dir / f"{table}.parquet"
            con.execute(f"copy main.{_ident(table)} to {_sql_string(str(path))} "
                        "(format parquet, compression zstd)")


def swap_symlink(link: Path, target_name: str) -> None:
    """Point `link` at `target_name` (relative) atomically: a new link renamed over it."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(target_name, temporary)
    os.replace(temporary, link)


def prune_exports(exports: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest export folders, never the one `current` points at.

    Keeping more than one lets a reader that resolved `current` just before a swap finish
    its query. Returns the folders removed.
    """
    current = (exports / CURRENT_LINK).resolve() if (exports / CURRENT_LINK).exists() else None
    versions = sorted((path for path in exports.iterdir()
                       if path.is_dir() and not path.is_symlink()
                       and not path.name.startswith(".")), reverse=True)
    removed = []
    for path in versions[max(keep, 1):]:
        if current is not None and path.resolve() == current:
            continue
        shutil.rmtree(path)
        removed.append(path)
    return removed


def publish(warehouse: Path, serving: Path, exports: Path, target_path: Path,
            select: Sequence[str] = (), exclude: Sequence[str] = (),
            salt: str | None = None, storage_version: str = DEFAULT_STORAGE_VERSION,
            keep_exports: int = 2, memory_limit: str | None = None) -> Publication:
    """Check the last build, then write and swap in the serving copy and Parquet exports.

    Raises PublishError (nothing changed) when the build did not succeed or the warehouse
    cannot be read; on any other failure the temporary files are removed and the previous
    copy stays in place.
    """
    try:
        manifest = json.loads((target_path / "manifest.json").read_text())
        run_results = json.loads((target_path / "run_results.json").read_text())
    except FileNotFoundError as error:
        raise PublishError(f"no dbt artefacts: {error.filename} is missing; run "
                           "`dbt build` first") from error
    tables = public_tables(manifest, select, exclude)
    check_build(run_results, tables)
    check_database(warehouse, tables)
    if not warehouse.exists():
        raise PublishError(f"the warehouse {warehouse} does not exist")
    build = run_results.get("metadata") or {}
    publish_id = new_publish_id(datetime.now(timezone.utc),
                                build.get("invocation_id") or "unknown")
    serving.parent.mkdir(parents=True, exist_ok=True)
    exports.mkdir(parents=True, exist_ok=True)
    with _publish_lock(serving):
        # Leftovers of a publish that was killed: no other publisher can be writing them.
        for stale in serving.parent.glob(f".{serving.name}.*.tmp*"):
            stale.unlink()
        temporary = serving.with_name(f".{serving.name}.{publish_id}.tmp")
        export_dir = exports / publish_id
        try:
            rows, hashed = write_serving_database(
                warehouse, temporary, tables, salt, storage_version, publish_id, build,
                memory_limit)
            write_parquet_exports(temporary, export_dir, rows)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o444)
            os.replace(temporary, serving)
            _fsync_dir(serving.parent)
            swap_symlink(exports / CURRENT_LINK, publish_id)
            _fsync_dir(exports)
        except BaseException:
            for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
                leftover.unlink(missing_ok=True)
            if export_dir.exists() and (exports / CURRENT_LINK).resolve() != export_dir.resolve():
                shutil.rmtree(export_dir, ignore_errors=True)
            raise
        prune_exports(exports, keep_exports)
    return Publication(publish_id=publish_id, serving_path=serving, export_dir=export_dir,
                       tables=rows, pseudonymised_columns=hashed,
                       storage_version=storage_version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Publish the serving copy (read-only DuckDB file and Parquet exports) "
                    "of the public tables, after a successful dbt build.")
    parser.add_argument("--database", type=Path,
                        default=Path(os.environ.get("DUCKDB_PATH", DEFAULT_WAREHOUSE)),
                        help="the warehouse dbt built (default: $DUCKDB_PATH or %(default)s)")
    parser.add_argument("--serving", type=Path,
                        default=Path(os.environ.get("REES46_SERVING_DB", DEFAULT_SERVING)),
                        help="the serving copy (default: $REES46_SERVING_DB or %(default)s)")
    parser.add_argument("--exports", type=Path,
                        default=Path(os.environ.get("REES46_EXPORTS_DIR", DEFAULT_EXPORTS)),
                        help="folder of the Parquet exports (default: $REES46_EXPORTS_DIR "
                             "or %(default)s)")
    parser.add_argument("--target-path", type=Path,
                        default=Path(os.environ.get("DBT_TARGET_PATH", "target")),
                        help="dbt's target folder with manifest.json and run_results.json")
    parser.add_argument("--select", action="append", default=[],
                        help="publish only these public models: name or tag:name, "
                             "optional trailing + for descendants (repeatable)")
    parser.add_argument("--exclude", action="append", default=[],
                        help="leave these models out, same syntax (e.g. tag:ml+)")
    parser.add_argument("--storage-version",
                        default=os.environ.get("REES46_SERVING_STORAGE_VERSION",
                                               DEFAULT_STORAGE_VERSION),
                        help="DuckDB storage version of the serving file (default "
                             "$REES46_SERVING_STORAGE_VERSION or %(default)s)")
    parser.add_argument("--keep-exports", type=int, default=2,
                        help="export folders to keep, the current one included")
    args = parser.parse_args(argv)
    try:
        publication = publish(
            args.database, args.serving, args.exports, args.target_path,
            select=args.select, exclude=args.exclude, salt=salt_from_env(),
            storage_version=args.storage_version, keep_exports=args.keep_exports,
            memory_limit=os.environ.get("DUCKDB_MEMORY_LIMIT"))
    except PublishError as error:
        print(f"publish: nothing published, the previous copy is unchanged: {error}",
              file=sys.stderr)
        return 1
    hashed = sum(len(columns) for columns in publication.pseudonymised_columns.values())
    salted = os.environ.get(SALT_ENV)
    print(f"Published {len(publication.tables)} tables "
          f"({sum(publication.tables.values()):,} rows), publish id "
          f"{publication.publish_id}:\n"
          f"  serving copy    {publication.serving_path} (read-only, DuckDB storage "
          f"{publication.storage_version})\n"
          f"  Parquet         {publication.export_dir.parent / CURRENT_LINK}/ -> "
          f"{publication.export_dir.name}\n"
          f"  user ids        "
          + (f"pseudonymised ({hashed} columns, {SALT_ENV} is set)" if salted
             else f"as in the warehouse ({SALT_ENV} not set)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
