"""Klaviyo accounts as Dagster assets (``pip install 'omniload[dagster]'``), built on ``dagster-dlt`` and the
:func:`~omniload.sources.klaviyo.klaviyo_source` dlt source::

    from omniload.integrations.dagster import klaviyo_definitions

    defs = klaviyo_definitions(
        accounts={"brand_a": "KLAVIYO_BRAND_A", "brand_b": "KLAVIYO_BRAND_B"},  # account -> environment variable
        tables=["events", "profiles", "campaigns"], dest_uri="postgresql://...", schema="klaviyo", cron="0 * * * *")

One asset per table, one partition per account, every row carrying the account's ``account_id`` first in its
primary key (``klaviyo_source(account_column=True)``): each (table, account) is a step of its own, so Dagster spreads
accounts over its executors, retries one account's partition alone and schedules runs (one run per account).
Each account's key is read from its environment variable when its step runs (the private key ``pk_...``, or a
``klaviyo://`` source URI with ``base_url=``/``revision=``), never from Dagster config, and never shown.

State: each (table, account) has a dlt pipeline of its own (``omniload__<schema>__<table>__<account>``), whose
state dlt keeps in the destination, so each partition resumes from its own cursor whichever node runs it.
Locking: partitions of different accounts write the same table; dlt stages a merge in one staging table per
table, so two at once would lose rows. A step holds the destination's lock of its table
(``Destination.step_lock``: the table lock of a CLI run; DuckDB: the file, one writer at a time) while it reads
its saved state and while it loads, not while it reads Klaviyo, waiting up to ``OMNILOAD_LOCK_WAIT`` seconds for
another step or run.
"""

# no ``from __future__ import annotations``: Dagster reads the asset function's annotations as objects
import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

try:
    import dagster as dg
    from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
    from dagster_dlt.translator import DltResourceTranslatorData
except ImportError:  # one line, what to install
    raise ImportError("omniload.integrations.dagster needs Dagster: pip install 'omniload[dagster]'") from None

import dlt

from ..destinations import parse_destination
from ..destinations.state import pipeline_name
from ..errors import OmniloadError, UsageError
from ..load import describe_failure, root_cause
from ..runtime import debugging
from ..sources.base import ReadOptions
from ..sources.klaviyo import klaviyo_source
from ..sources.klaviyo.client import DEFAULT_BASE_URL, REVISION
from ..sources.klaviyo.options import KEY_FORM
from ..sources.klaviyo.tables import TABLES
from ..uri import redact, register_secret

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PLACEHOLDER_KEY = "pk_" + "0" * 34  # the definitions' source: it names the tables and is never read
URI_PARAMS = ("api_key", "base_url", "revision")
# dagster-dlt's asset specs need a dlt pipeline, which makes a working folder: the definitions' one is never run
DEFINITIONS_DIR = os.path.join(tempfile.gettempdir(), "omniload-dagster-definitions")


def account_pipeline(schema: str, table: str, account: str) -> str:
    """The dlt pipeline, so the saved state, of one account's table: named as the CLI names a scoped table's
    (``pipeline_name`` with the account as its scope)."""
    return pipeline_name(schema, table, (("account", account),))


def account_credentials(variable: str) -> tuple[str, str, str]:
    """(key, base URL, revision) of an account from its environment variable ``variable``; a one-line UsageError
    otherwise (the step's failure names the account)."""
    text = os.environ.get(variable, "").strip()
    if not text:
        raise UsageError(f"environment variable {variable} is not set; set it to the account's "
                         "private API key (pk_...) or a klaviyo:// source URI")  # fmt: skip
    if not text.startswith("klaviyo://"):
        if not KEY_FORM.fullmatch(text):
            raise UsageError(f"{variable} holds no Klaviyo private API key ({len(text):,} "
                             "characters); give pk_ and 34 letters and digits, or a klaviyo:// source URI")  # fmt: skip
        register_secret(text)
        return text, DEFAULT_BASE_URL, REVISION
    from urllib.parse import parse_qs, urlsplit

    from ..sources.klaviyo import KlaviyoSource

    other = sorted(set(parse_qs(urlsplit(text).query, keep_blank_values=True)) - set(URI_PARAMS))
    if other:
        raise UsageError(f"{variable}: parameter '{other[0][:40]}' is not taken here; allowed: "
                         f"{', '.join(URI_PARAMS)}")  # fmt: skip
    try:
        source = KlaviyoSource.from_uri(text)
    except UsageError as exc:
        raise UsageError(f"{variable}: {str(exc).removeprefix('--source-uri: ')}") from None
    return source.config.api_key, source.config.base_url, source.config.revision


class _Translator(DagsterDltTranslator):
    """Asset key ``<prefix>/<table>``, no upstream source assets."""

    def __init__(self, prefix: Sequence[str]) -> None:
        self.prefix = list(prefix)

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(key=dg.AssetKey([*self.prefix, data.resource.name]), deps=[])


def _check(accounts: Mapping[str, str], tables: Sequence[str]) -> None:
    """Refuse bad accounts or tables when the definitions are built (one line each)."""
    if not accounts:
        raise UsageError("accounts: give at least one account, as {name: environment variable of its key}")
    for name, variable in accounts.items():
        if not ACCOUNT_NAME.fullmatch(name):
            raise UsageError(f"accounts: '{name[:70]}' is not allowed as an account name; use 1 to 64 letters, "
                             "digits and _ (it names the partition and the saved state)")  # fmt: skip
        if not ENV_NAME.fullmatch(variable or "") or KEY_FORM.fullmatch(variable):
            raise UsageError(f"accounts: '{name}' must name an environment variable (letters, digits, _) holding "
                             "its key, not the key itself")  # fmt: skip
    unknown = [t for t in tables if t not in TABLES]
    if unknown or not tables or len(set(tables)) != len(tables):
        raise UsageError(f"tables: give each table once, from: {', '.join(TABLES)}" + (f" ('{unknown[0][:40]}' is no "
                         "table)" if unknown else ""))  # fmt: skip


def klaviyo_assets(accounts: Mapping[str, str], tables: Sequence[str], dest_uri: str, schema: str = "klaviyo",
                   start: datetime | None = None, parallelism: int = ReadOptions.parallelism,
                   key_prefix: Sequence[str] = ("klaviyo",), group_name: str = "klaviyo",
                   pipelines_dir: str | None = None, pool: str | None = None) -> list[dg.AssetsDefinition]:  # fmt: skip
    """One asset per table of ``tables`` (``<key_prefix>/<table>``), partitioned by the accounts of ``accounts``
    (account name -> the environment variable holding its key or ``klaviyo://`` URI), loading into ``schema`` of
    ``dest_uri`` (an omniload destination URI). ``start`` bounds each account's first run. ``pipelines_dir``: where
    dlt keeps the steps' working folders (default: dlt's; nothing in them is trusted: each step restores its state
    from the destination). ``pool``: each table's asset in the Dagster concurrency pool ``<pool>_<table>``
    (destinations without a table lock: limit each to 1)."""
    _check(accounts, tables)
    dest = parse_destination(dest_uri)  # refused here when malformed; opened only by the steps
    partitions = dg.StaticPartitionsDefinition(sorted(accounts))
    translator = _Translator(key_prefix)
    return [_table_asset(name, accounts, dest_uri, dest.kind, schema, start, parallelism, partitions, translator,
                         group_name, pipelines_dir, pool) for name in tables]  # fmt: skip


def _table_asset(name, accounts, dest_uri, kind, schema, start, parallelism, partitions, translator, group_name,
                 pipelines_dir, pool) -> dg.AssetsDefinition:  # fmt: skip
    table = TABLES[name].info.dest_name
    shape = klaviyo_source(api_key=PLACEHOLDER_KEY, tables=[name], account_column=True)  # its name, hints; never read
    named = dlt.pipeline(pipeline_name=pipeline_name(schema, table), destination=kind, dataset_name=schema,
                         pipelines_dir=DEFINITIONS_DIR)  # fmt: skip

    @dlt_assets(dlt_source=shape, dlt_pipeline=named, name=f"klaviyo_{table}", group_name=group_name,
                partitions_def=partitions, dagster_dlt_translator=translator, pool=f"{pool}_{table}" if pool else None)  # fmt: skip
    def load_table(context: dg.AssetExecutionContext, dlt: DagsterDltResource) -> Iterator:
        account = context.partition_key
        try:
            yield from _load(context, dlt, name, table, account, accounts[account], dest_uri, schema, start,
                             parallelism, pipelines_dir)  # fmt: skip
        except OmniloadError as exc:
            raise dg.Failure(description=f"table '{table}' of account '{account}': {redact(str(exc))}") from None

    return load_table


def _load(context, resource, name, table, account, variable, dest_uri, schema, start, parallelism,
          pipelines_dir) -> Iterator:  # fmt: skip
    """One account's table: its saved state read and its rows loaded with the table's lock held, the rows read from
    Klaviyo (and normalized) without it, so other accounts' steps of the table load meanwhile."""
    key, base_url, revision = account_credentials(variable)
    source = klaviyo_source(api_key=key, tables=[name], base_url=base_url, revision=revision, start=start,
                            parallelism=parallelism, account_column=True)  # fmt: skip
    dest = parse_destination(dest_uri)
    dest.check_target(schema, table)

    @contextlib.contextmanager
    def writing() -> Iterator:
        """The table's lock, and the destination opened (DuckDB: the file) while it is held."""
        with dest.step_lock(schema, table, context.log.info):
            dest.preflight()
            try:
                yield dest.dlt_destination()
            finally:
                dest.close()

    pipeline = dlt.pipeline(pipeline_name=account_pipeline(schema, table, account), dataset_name=schema,
                            pipelines_dir=pipelines_dir)  # fmt: skip
    try:
        pipeline.drop()  # nothing local is trusted: the state is the destination's
        with writing() as destination:
            pipeline.sync_destination(destination=destination)
        pipeline.extract(source, loader_file_format=dest.file_format)
        pipeline.normalize()
        with writing() as destination:
            info = pipeline.load(destination=destination)
        info.raise_on_failed_jobs()
    except Exception as exc:
        cause = root_cause(exc)
        if isinstance(cause, OmniloadError):
            raise cause from None
        if debugging():  # OMNILOAD_DEBUG=1: Dagster shows the whole traceback
            raise
        line = describe_failure(table, dest, exc).replace(
            f"table '{table}'", f"table '{table}' of account '{account}'", 1
        )
        raise dg.Failure(description=redact(line)) from None
    metadata = resource.extract_resource_metadata(context, source.resources[table], info, pipeline)  # dagster-dlt's
    yield dg.MaterializeResult(asset_key=context.assets_def.key, metadata=metadata)


def klaviyo_definitions(accounts: Mapping[str, str], tables: Sequence[str], dest_uri: str, schema: str = "klaviyo",
                        cron: str | None = None, retries: int = 0, **options) -> dg.Definitions:  # fmt: skip
    """:func:`klaviyo_assets` with the ``dlt`` resource, a job over them and, given ``cron``, a schedule that runs
    every account's partition (one run per account) at each tick. ``retries``: a failed run (one account) is run
    again up to this many times (Dagster's run retries: the daemon's ``run_retries`` must be enabled)."""
    assets = klaviyo_assets(accounts, tables, dest_uri, schema, **options)
    tags = {"dagster/max_retries": str(retries), "dagster/retry_strategy": "FROM_FAILURE"} if retries else {}
    job = dg.define_asset_job("klaviyo_accounts", selection=dg.AssetSelection.assets(*assets),
                              partitions_def=assets[0].partitions_def, tags=tags)  # fmt: skip
    schedules = []
    if cron:

        @dg.schedule(cron_schedule=cron, job=job, name="klaviyo_accounts_schedule")
        def every_account(context: dg.ScheduleEvaluationContext):
            tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else ""
            for account in sorted(accounts):
                yield dg.RunRequest(run_key=f"{account}:{tick}", partition_key=account)

        schedules.append(every_account)
    return dg.Definitions(assets=assets, jobs=[job], schedules=schedules, resources={"dlt": DagsterDltResource()})
