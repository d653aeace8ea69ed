"""ingestr compatibility of the command line: ingestr's environment names and the ingestr flags that mean
nothing here (accepted, with a note saying why), so an ingestr command line runs unchanged.

Every flag reads ``OMNILOAD_<FLAG>`` first, then the names ingestr reads (``SOURCE_URI``, ``INGESTR_SOURCE_URI``,
...). The table of what each ingestr flag does here is in the README ("ingestr flag → omniload").
"""

from __future__ import annotations

import argparse
import os
import sys

# flag -> the environment names ingestr reads for it (after OMNILOAD_<FLAG>)
INGESTR_ENV: dict[str, tuple[str, ...]] = {
    "source-uri": ("SOURCE_URI", "INGESTR_SOURCE_URI"),
    "dest-uri": ("DESTINATION_URI", "INGESTR_DESTINATION_URI"),
    "source-table": ("SOURCE_TABLE", "INGESTR_SOURCE_TABLE"),
    "dest-table": ("DESTINATION_TABLE", "INGESTR_DESTINATION_TABLE"),
    "incremental-key": ("INCREMENTAL_KEY", "INGESTR_INCREMENTAL_KEY"),
    "incremental-strategy": ("INCREMENTAL_STRATEGY", "INGESTR_INCREMENTAL_STRATEGY"),
    "interval-start": ("INTERVAL_START", "INGESTR_INTERVAL_START"),
    "interval-end": ("INTERVAL_END", "INGESTR_INTERVAL_END"),
    "primary-key": ("PRIMARY_KEY", "INGESTR_PRIMARY_KEY"),
    "partition-by": ("PARTITION_BY", "INGESTR_PARTITION_BY"),
    "cluster-by": ("CLUSTER_BY", "INGESTR_CLUSTER_BY"),
    "yes": ("SKIP_CONFIRMATION", "INGESTR_SKIP_CONFIRMATION"),
    "full-refresh": ("FULL_REFRESH", "INGESTR_FULL_REFRESH"),
    "progress": ("PROGRESS", "INGESTR_PROGRESS"),
    "sql-backend": ("SQL_BACKEND", "INGESTR_SQL_BACKEND"),
    "loader-file-format": ("LOADER_FILE_FORMAT", "INGESTR_LOADER_FILE_FORMAT"),
    "page-size": ("PAGE_SIZE", "INGESTR_PAGE_SIZE"),
    "loader-file-size": ("LOADER_FILE_SIZE", "INGESTR_LOADER_FILE_SIZE"),
    "schema-naming": ("SCHEMA_NAMING", "INGESTR_SCHEMA_NAMING"),
    "pipelines-dir": ("PIPELINES_DIR", "INGESTR_PIPELINES_DIR"),
    "extract-parallelism": ("EXTRACT_PARALLELISM", "INGESTR_EXTRACT_PARALLELISM"),
    "sql-reflection-level": ("SQL_REFLECTION_LEVEL", "INGESTR_SQL_REFLECTION_LEVEL"),
    "sql-limit": ("SQL_LIMIT", "INGESTR_SQL_LIMIT"),
    "sql-exclude-columns": ("SQL_EXCLUDE_COLUMNS", "INGESTR_SQL_EXCLUDE_COLUMNS"),
    "columns": ("INGESTR_COLUMNS",),
    "yield-limit": ("YIELD_LIMIT", "INGESTR_YIELD_LIMIT"),
    "staging-bucket": ("STAGING_BUCKET", "INGESTR_STAGING_BUCKET"),
    "mask": ("MASK", "INGESTR_MASK"),
    "no-load-timestamp": ("NO_LOAD_TIMESTAMP", "INGESTR_NO_LOAD_TIMESTAMP"),
    "debug": ("DEBUG", "INGESTR_DEBUG"),
    "schema-contract": ("SCHEMA_CONTRACT", "INGESTR_SCHEMA_CONTRACT"),
    "trim-whitespace": ("TRIM_WHITESPACE", "INGESTR_TRIM_WHITESPACE"),
    "staging-dataset": ("STAGING_DATASET", "INGESTR_STAGING_DATASET"),
    "disable-prestaging": ("INGESTR_DISABLE_PRESTAGING",),
    "no-inference": ("NO_INFERENCE", "INGESTR_NO_INFERENCE"),
    "query-annotations": ("INGESTR_QUERY_ANNOTATIONS",),
    "incremental-predicate": ("INCREMENTAL_PREDICATE", "INGESTR_INCREMENTAL_PREDICATE"),
    "extract-partition-by": ("EXTRACT_PARTITION_BY", "INGESTR_EXTRACT_PARTITION_BY"),
    "extract-partition-interval": ("EXTRACT_PARTITION_INTERVAL", "INGESTR_EXTRACT_PARTITION_INTERVAL"),
    "refresh-id": ("REFRESH_ID", "INGESTR_REFRESH_ID"),
    "cdc-table-naming": ("CDC_TABLE_NAMING", "INGESTR_CDC_TABLE_NAMING"),
}

_WINDOWS = "each table is read in windows of its own incremental key already (see --extract-parallelism)"
# ingestr flags that mean nothing for omniload: accepted, and a note says why (flag -> reason)
IGNORED: dict[str, str] = {
    "page-size": "Klaviyo pages have the API's own size per endpoint; batches to the destination are 50,000 rows",
    "sql-limit": "it limits SQL sources; no omniload source is a SQL database",
    "sql-backend": "it picks the reader of SQL sources; no omniload source is a SQL database",
    "sql-reflection-level": "it applies to SQL sources only",
    "sql-exclude-columns": "it applies to SQL sources only",
    "yield-limit": "omniload reads whole intervals; use --interval-start/--interval-end to read less",
    "pipelines-dir": "omniload keeps no local pipeline state: the cursor lives in the destination, dlt works in a throw-away folder",
    "no-load-timestamp": "omniload adds no load-timestamp column (only dlt's _dlt_load_id)",
    "cluster-by": "clustering is not applied by omniload's destinations",
    "staging-bucket": "omniload loads without a staging bucket",
    "loader-file-format": "each destination uses its own best format (Parquet where it can)",
    "disable-prestaging": "omniload hands dlt typed Arrow batches; there is no extract-time staging to turn off",
    "no-inference": "every table's columns are declared by the source; nothing is inferred",
    "query-annotations": "omniload's destinations take no query comments (they annotate Snowflake queries in ingestr)",
    "extract-partition-by": _WINDOWS,
    "extract-partition-interval": _WINDOWS,
    "refresh-id": "it names a refresh in ingestr's CDC and server modes; omniload has neither",
    "cdc-table-naming": "it names the tables of change-data-capture sources; no omniload source is one",
}
SWITCHES = ("no-load-timestamp", "disable-prestaging", "no-inference")  # ingestr's flags that take no value
CONTRACTS = ("evolve", "freeze", "discard_row", "discard_value")
NAMINGS = ("auto", "snake_case", "default", "direct")
MULTI = ("columns", "mask", "sql-exclude-columns")  # repeatable (ingestr's list options); also comma-separated


def env(flag: str, default=None):
    """``OMNILOAD_<FLAG>``, else the first ingestr name that is set, else ``default``."""
    for name in ("OMNILOAD_" + flag.upper().replace("-", "_"), *INGESTR_ENV.get(flag, ())):
        if name in os.environ:
            return os.environ[name]
    return default


def env_name(flag: str) -> str:
    """The environment name a value of ``flag`` came from (for messages)."""
    for name in ("OMNILOAD_" + flag.upper().replace("-", "_"), *INGESTR_ENV.get(flag, ())):
        if name in os.environ:
            return name
    return "OMNILOAD_" + flag.upper().replace("-", "_")


def add_ingestr_flags(parser: argparse.ArgumentParser) -> None:
    """The ingestr flags omniload has no flag of its own for."""
    for flag in IGNORED:
        if flag in SWITCHES:
            parser.add_argument(
                f"--{flag}", action="store_true", default=env(flag), help=f"ingestr's; ignored: {IGNORED[flag]}"
            )
        elif flag in MULTI:
            parser.add_argument(f"--{flag}", action="append", default=None, help=f"ingestr's; ignored: {IGNORED[flag]}")
        else:
            parser.add_argument(f"--{flag}", default=env(flag), help=f"ingestr's; ignored: {IGNORED[flag]}")
    parser.add_argument(
        "--loader-file-size",
        default=env("loader-file-size"),
        help="rows per file dlt writes before starting another (dlt's data_writer.file_max_items)",
    )
    parser.add_argument(
        "--schema-naming",
        default=env("schema-naming"),
        choices=NAMINGS,
        help="auto, snake_case or default: names as omniload writes them (snake_case already); direct is accepted with a note",
    )
    parser.add_argument(
        "--schema-contract",
        default=env("schema-contract"),
        choices=CONTRACTS,
        help="what a load may change in an existing table: evolve (default), freeze, discard_row, discard_value (dlt's contracts)",
    )
    parser.add_argument(
        "--trim-whitespace",
        action="store_true",
        default=env("trim-whitespace"),
        help="trim leading and trailing whitespace from every text value",
    )
    parser.add_argument(
        "--incremental-predicate",
        default=env("incremental-predicate"),
        help="SQL added to a merge's match on the key (ingestr's; 'target' is the table), DuckDB and PostgreSQL",
    )
    parser.add_argument(
        "--staging-dataset",
        default=env("staging-dataset"),
        help="the schema of dlt's staging tables (default: <schema>_staging)",
    )
    parser.add_argument(
        "--columns",
        action="append",
        default=None,
        help="column types and renames: name:type, name:type:source (rename), name::source (rename only); "
        "types text/string, bigint, double, bool, timestamp, date, json, decimal, ...; repeatable or comma-separated",
    )
    parser.add_argument(
        "--mask",
        action="append",
        default=None,
        help="mask a column, column:algorithm[:param] (hash, md5, hmac, email, phone, redact, stars, fixed, partial, "
        "random, uuid, sequential, round, range, noise, date_shift, year_only, month_year, ...); repeatable",
    )
    parser.add_argument(
        "--partition-by", default=env("partition-by"), help="partition column where the destination partitions (Delta)"
    )


def listed(values: list[str] | None, flag: str) -> list[str]:
    """A repeatable flag's values, each also comma-separated; from the environment when not given."""
    if values is None:
        raw = env(flag)
        values = [raw] if raw else []
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def notes(args: argparse.Namespace) -> list[str]:
    """One note per ingestr flag that was given but means nothing here."""
    out = []
    for flag in IGNORED:
        value = getattr(args, flag.replace("-", "_"), None)
        if value not in (None, False, "", []):
            out.append(f"--{flag} is accepted for ingestr compatibility and ignored: {IGNORED[flag]}")
    if args.schema_naming in ("auto", "snake_case"):
        out.append(
            f"--schema-naming {args.schema_naming} is what omniload does: its tables and columns are already snake_case"
        )
    if args.schema_naming == "direct":
        out.append(
            "--schema-naming direct is accepted and ignored: omniload names tables with _ for - "
            "(catalog-variants lands as catalog_variants; --dest-table catalog-variants means the same)"
        )
    return out


def apply_loader_file_size(value) -> None:
    """``--loader-file-size N``: dlt starts a new file every N rows (as ingestr sets it)."""
    if value:
        os.environ["DATA_WRITER__FILE_MAX_ITEMS"] = str(int(value))


def say(message: str) -> None:
    """A note or warning before the run, on stderr (secrets redacted)."""
    from .uri import redact

    print(f"omniload: {redact(message)}", file=sys.stderr, flush=True)
