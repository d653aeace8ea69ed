"""The `omniload` command line: parse flags (each also from an OMNILOAD_* variable) and call the library.

Heavy libraries (dlt, pyarrow, aiohttp) are imported only by the command that needs them, so `--help` is fast;
process set-up (runtime.py) happens once in ``main()``.
Exit codes: 0 success, 1 a table failed (the others still loaded), 2 bad usage, 130/143 stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from .errors import Interrupted, OmniloadError, UsageError
from .signals import received
from .sources.base import CHECKPOINT_ROWS, ReadOptions

PROGRESS = ["interactive", "log", "json"]
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
EPILOG = (
    "Every flag can also be set with an environment variable: --source-uri is OMNILOAD_SOURCE_URI, and so on; "
    "ingestr's names (SOURCE_URI, DESTINATION_URI, ...) are read after them."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _env(flag: str, default=None):
    """``OMNILOAD_<FLAG>``, then the environment names ingestr reads (compat.py)."""
    from .compat import env

    return env(flag, default)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="omniload", description="Copy data from a source URI to a destination URI, incrementally.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"omniload {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    ing = sub.add_parser("ingest", help="copy tables from a source to a destination", epilog=EPILOG)
    ing.add_argument("--source-uri", action="append", default=None, required=_env("source-uri") is None,
                     help="e.g. klaviyo://?api_key=pk_...[&base_url=...]; again for each further account, all loaded "
                          "into the same tables")  # fmt: skip
    for flag, helptext in [
        ("source-table", "a table, a comma-separated list, or 'all'"),
        ("dest-uri", "e.g. duckdb:///klaviyo.duckdb"),
    ]:
        ing.add_argument(f"--{flag}", default=_env(flag), required=_env(flag) is None, help=helptext)
    ing.add_argument(
        "--dest-table", default=_env("dest-table"), help="table or schema.table (default: the source table)"
    )
    ing.add_argument(
        "--interval-start", default=_env("interval-start"), help="inclusive; YYYY-MM-DD or RFC 3339; no zone means UTC"
    )
    ing.add_argument("--interval-end", default=_env("interval-end"), help="exclusive; default: now")
    ing.add_argument(
        "--extract-parallelism",
        default=_env("extract-parallelism", str(ReadOptions.parallelism)),
        help=f"windows/streams at once (default {ReadOptions.parallelism})",
    )
    ing.add_argument(
        "--incremental-strategy",
        default=_env("incremental-strategy"),
        help="merge, replace, append, delete+insert or scd2",
    )
    ing.add_argument(
        "--incremental-key", default=_env("incremental-key"), help="accepted for ingestr; the table's own key is used"
    )
    ing.add_argument(
        "--primary-key", default=_env("primary-key"), help="accepted for ingestr; the table's own key is used"
    )
    ing.add_argument(
        "--full-refresh",
        action="store_true",
        default=_env("full-refresh"),
        help="drop the table and its cursor, reload everything",
    )
    ing.add_argument("--progress", choices=PROGRESS, default=_env("progress"))
    ing.add_argument(
        "--max-retry-after",
        default=_env("max-retry-after", f"{ReadOptions.max_retry_after:g}"),
        help="longest Retry-After to wait, seconds",
    )
    ing.add_argument(
        "--checkpoint-rows",
        default=_env("checkpoint-rows", str(CHECKPOINT_ROWS)),
        help="commit data and cursor every ~N rows of a backfill, so a crash loses at most that much work",
    )
    ing.add_argument(
        "--table-parallelism",
        default=_env("table-parallelism", "4"),
        help="tables of different rate-limit buckets loaded at once (default 4; 1: one after another)",
    )
    ing.add_argument(
        "--source-parallelism",
        default=_env("source-parallelism", "4"),
        help="with several --source-uri: sources (accounts) loaded at once, each with --table-parallelism (default 4)",
    )
    ing.add_argument("--lookback", default=_env("lookback"),
                     help="re-read this much before each saved cursor for late records, e.g. 30m, 2h, 7d "
                          "(default: each table's own; events 1d, others 10m)")  # fmt: skip
    ing.add_argument("--deep-lookback", default=_env("deep-lookback"),
                     help="at most once per --deep-lookback-every, re-read this much instead, e.g. 7d; 0 never "
                          "(default: each table's own; events 7d, others none)")  # fmt: skip
    ing.add_argument(
        "--deep-lookback-every",
        default=_env("deep-lookback-every", "1d"),
        help="source time between two deep re-reads (default 1d)",
    )
    ing.add_argument(
        "--reconcile",
        default=_env("reconcile"),
        help="reconcile deletes of these tables whatever it costs: a comma-separated list, 'all', or 'none' "
        "(not even the cheap ones, which are reconciled on every run by default)",
    )
    ing.add_argument(
        "--reconcile-every",
        default=_env("reconcile-every"),
        help="also reconcile the large tables (profiles, big memberships) when this long passed since their last "
        "reconcile, e.g. 7d",
    )
    ing.add_argument(
        "--hard-deletes",
        action="store_true",
        default=_env("hard-deletes"),
        help="delete the rows of deleted records instead of setting _omniload_deleted_at",
    )
    ing.add_argument("--allow-mass-delete", action="store_true", default=_env("allow-mass-delete"),
                     help="mark rows deleted even when a scan lists under half of a table's keys")  # fmt: skip
    ing.add_argument(
        "--debug",
        action="store_true",
        default=_env("debug", "").lower() in TRUE,
        help="show tracebacks and dlt's log for failures (also OMNILOAD_DEBUG=1)",
    )
    ing.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (omniload never asks)")
    from .compat import add_ingestr_flags

    add_ingestr_flags(ing)
    sb = sub.add_parser("sandbox", help="run a local API sandbox (the klaviyo-sandbox package)")
    sbs = sb.add_subparsers(dest="sandbox", metavar="SOURCE")
    sbs.required = True
    sbs.add_parser("klaviyo", help="klaviyo-sandbox's command: see `klaviyo-sandbox --help`", add_help=False)
    return p


def _number(value: str, flag: str, low: float) -> float:
    """A finite number of at least ``low`` (not necessarily whole: see :func:`_whole`)."""
    try:
        n = float(value)
    except ValueError:
        raise UsageError(f"{flag}: '{value}' is not a number") from None
    if not math.isfinite(n):
        raise UsageError(f"{flag}: '{value}' is not a finite number")
    if n < low:
        raise UsageError(f"{flag}: {value} is below {low}")
    return n


def _whole(value: str, flag: str, low: int, high: int) -> int:
    n = _number(value, flag, low)
    if n != int(n) or n > high:
        raise UsageError(f"{flag}: '{value}' is not allowed; use a whole number from {low} to {high}")
    return int(n)


def _flag(value, flag: str) -> bool:
    """A switch: True from the flag, or an environment value such as 1/true/yes (any case); garbage is refused."""
    if isinstance(value, bool):
        return value
    text = (value or "").strip().lower()
    if text not in TRUE + FALSE:
        from .compat import env_name

        raise UsageError(f"{env_name(flag)}: '{value}' is not allowed; use 1/true/yes or 0/false/no")
    return text in TRUE


def _ingest(args: argparse.Namespace) -> int:
    from .dates import parse_date, parse_duration
    from .pipeline import IngestOptions, ingest
    from .signals import install

    install()

    if (
        args.progress is not None and args.progress not in PROGRESS
    ):  # from OMNILOAD_PROGRESS, which argparse does not check
        from .compat import env_name

        raise UsageError(f"{env_name('progress')}: '{args.progress}' is not allowed; allowed: {', '.join(PROGRESS)}")
    from .compat import CONTRACTS, NAMINGS, apply_loader_file_size, env_name, listed, notes

    for flag, value, allowed in (
        ("schema-contract", args.schema_contract, CONTRACTS),
        ("schema-naming", args.schema_naming, NAMINGS),
    ):
        if value is not None and value not in allowed:  # from the environment, which argparse does not check
            raise UsageError(f"{env_name(flag)}: '{value}' is not allowed; allowed: {', '.join(allowed)}")

    if args.loader_file_size is not None:
        size = _number(args.loader_file_size, "--loader-file-size", 1)
        apply_loader_file_size(int(size))
    par = _number(args.extract_parallelism, "--extract-parallelism", 1)
    if par != int(par):
        raise UsageError(f"--extract-parallelism: '{args.extract_parallelism}' is not a whole number")
    uris = args.source_uri or [_env("source-uri")]
    opts = IngestOptions(
        source_uri=uris[0], source_uris=uris,
        source_parallelism=_whole(args.source_parallelism, "--source-parallelism", 1, 64), source_table=args.source_table, dest_uri=args.dest_uri, dest_table=args.dest_table,
        interval_start=parse_date(args.interval_start, "--interval-start", past=True) if args.interval_start else None,
        interval_end=parse_date(args.interval_end, "--interval-end") if args.interval_end else None,
        extract_parallelism=int(par), incremental_strategy=args.incremental_strategy,
        incremental_key=args.incremental_key, primary_key=args.primary_key, full_refresh=_flag(args.full_refresh, "full-refresh"),
        progress=args.progress, max_retry_after=_number(args.max_retry_after, "--max-retry-after", 0),
        checkpoint_rows=int(_number(args.checkpoint_rows, "--checkpoint-rows", 1000)),
        lookback=parse_duration(args.lookback, "--lookback") if args.lookback else None,
        deep_lookback=parse_duration(args.deep_lookback, "--deep-lookback") if args.deep_lookback else None,
        deep_every=parse_duration(args.deep_lookback_every, "--deep-lookback-every"),
        table_parallelism=_whole(args.table_parallelism, "--table-parallelism", 1, 16),
        columns=listed(args.columns, "columns"), masks=listed(args.mask, "mask"), partition_by=args.partition_by,
        notes=notes(args),
        reconcile=args.reconcile,
        reconcile_every=parse_duration(args.reconcile_every, "--reconcile-every") if args.reconcile_every else None,
        hard_deletes=_flag(args.hard_deletes, "hard-deletes"), allow_mass_delete=_flag(args.allow_mass_delete, "allow-mass-delete"),
        trim_whitespace=_flag(args.trim_whitespace, "trim-whitespace"), schema_contract=args.schema_contract,
        staging_dataset=args.staging_dataset, incremental_predicate=args.incremental_predicate,
    )  # fmt: skip
    result = ingest(opts)
    if result.progress is not None:
        result.progress.summary()
    return result.exit_code


def _sandbox(argv: list[str]) -> int:
    """``omniload sandbox klaviyo ARGS``: the klaviyo-sandbox package's command, when it is installed."""
    try:
        from klaviyo_sandbox.cli import main as sandbox_main
    except ImportError:
        print("omniload: error: the Klaviyo sandbox is its own package: pip install klaviyo-sandbox "
              "(in this repository: pip install -e ./klaviyo-sandbox)", file=sys.stderr)  # fmt: skip
        return 2
    return sandbox_main(argv, prog="omniload sandbox klaviyo")


def main(argv: list[str] | None = None) -> int:
    from .runtime import setup

    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["sandbox", "klaviyo"]:  # a pass-through: the sandbox parses its own flags
        return _sandbox(argv[2:])
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "debug", False):
            os.environ["OMNILOAD_DEBUG"] = "1"
        setup()
        code = _ingest(args)
    except OmniloadError as exc:
        if received() is not None:  # a library wrapped the stop in its own error
            return _interrupted(Interrupted(received()))
        from .uri import redact

        print(f"omniload: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        return _interrupted(exc)
    except KeyboardInterrupt:
        print("omniload: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a raw traceback (it could carry a URI with a secret)
        if received() is not None:  # the stop surfaced as a library's error (DuckDB: "connection is busy")
            return _interrupted(Interrupted(received()))
        from .uri import redact

        print(f"omniload: internal error: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        from .runtime import debugging

        if debugging():
            import traceback

            print(redact(traceback.format_exc()), file=sys.stderr)
        return 1
    if received() is not None:  # a stop that came during an import and no check met since
        return _interrupted(Interrupted(received()))
    return code


def _interrupted(exc: Interrupted) -> int:
    print(f"omniload: interrupted ({exc}): stopped; committed slices are kept, run the same command again to resume",
          file=sys.stderr)  # fmt: skip
    return exc.exit_code


def entry() -> None:
    """The process's entry point: after a stop (exit 130 / 143) the process ends at once, without the interpreter's
    shutdown, where threads still inside DuckDB or Arrow abort the process ("FATAL: exception not rethrown", -6)."""
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
