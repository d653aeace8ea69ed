"""The Klaviyo source's configuration, one frozen :class:`KlaviyoConfig` built once and handed to the source's
constructor: from the source URI ``klaviyo://?api_key=pk_...`` (:func:`from_uri`) or from the plain dlt source's
parameters (dlt_source.py); both go through :func:`parse`, so every option is checked the same way before anything
is read. Per-run state is not here: it is the run's (run.py).

Connection: ``api_key`` (or ``api_key_env``: the name of the environment variable holding it), ``base_url`` (scheme, host and port: no path, no user name or
password), ``revision``. Reports: ``conversion_metric_id``,
``report_budget``, ``report_horizon_days``, ``metric_ids`` (see README, Reports). Opt-in columns:
``profile_fields=predictive_analytics`` adds the ``predictive_analytics`` column to profiles
(``additional-fields[profile]``; Klaviyo then allows profiles only 10/s and 150/m, so the table is paced by
that lower limit), ``template_fields=definition`` the ``definition`` column to templates
(``additional-fields[template]``; same rate limit). Opt-in tables: ``list_fields=profile_count``,
``segment_fields=profile_count`` and ``campaign_fields=estimated_recipient_count`` add the counts' tables
(tables/counts.py) to ``--source-table all``. Without them nothing changes. ``layout=fivetran`` keeps
Fivetran's Klaviyo schema as views beside the tables (fivetran.py); ``properties=columns`` (with
``property_columns_max``) lifts event and profile properties into columns (lift.py); ``metrics=`` reads the events
of the metrics it names only (chosen.py). ``account_column=true`` gives every table the
account's id (``account_id``, first in every primary key). A bad value is one line, exit 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

from ...errors import UsageError
from ...types import JSON
from . import chosen
from .client import DEFAULT_BASE_URL, REVISION
from .lift import CAP
from .spec import TableSpec
from .tables.reports import DAILY_REPORT_REQUESTS

# option -> {value: the opt-in table (tables/counts.py) it adds to ``--source-table all``}
OPT_IN_TABLES = {"list_fields": {"profile_count": "list-profile-counts"},
                 "segment_fields": {"profile_count": "segment-profile-counts"},
                 "campaign_fields": {"estimated_recipient_count": "campaign-recipient-estimations"}}  # fmt: skip
URI_PARAMS = ("api_key", "api_key_env", "base_url", "revision", "conversion_metric_id", "report_budget", "report_horizon_days",
              "metric_ids", "profile_fields", "template_fields", "layout", "properties", "property_columns_max",
              "account_column", "metrics", *OPT_IN_TABLES)  # fmt: skip
LAYOUTS = ("fivetran",)  # layout=: views kept beside the tables (fivetran.py)
REPORT_BUDGET = (
    200  # report requests a day per endpoint, under Klaviyo's DAILY_REPORT_REQUESTS: the rest is for other tools
)
KEY_FORM = re.compile(r"^pk_[A-Za-z0-9]{34}$")  # a private API key, as Klaviyo issues them
FIRST_REVISION = "2023-02-22"  # Klaviyo's first dated revision
# option -> (table, resource type, {value: (column type, (burst, steady) when asked for, or None: the table's)})
OPT_IN = {
    "profile_fields": ("profiles", "profile", {"predictive_analytics": (JSON, (10, 150))}),
    "template_fields": ("templates", "template", {"definition": (JSON, None)}),
}


@dataclass(frozen=True)
class KlaviyoConfig:
    """What one Klaviyo source was configured with (see the module docstring for each option), checked."""

    api_key: str = field(repr=False)  # a secret: never in a repr
    key_env: str = ""  # api_key_env=: the environment variable the key came from (its name is no secret)
    base_url: str = DEFAULT_BASE_URL  # scheme, host and port
    revision: str = REVISION
    conversion_metric_id: str | None = None  # reports: None finds "Placed Order"
    report_budget: int = REPORT_BUDGET  # report requests a day per endpoint
    report_horizon: timedelta | None = None  # None: each report table's own
    metric_ids: tuple[str, ...] = ()  # metric_aggregates: (): every metric
    profile_fields: tuple[str, ...] = ()  # opt-in columns (OPT_IN), by the option's name
    template_fields: tuple[str, ...] = ()
    opt_in_tables: tuple[str, ...] = ()  # tables added to ``--source-table all`` (OPT_IN_TABLES)
    layout: str = ""  # "fivetran": keep Fivetran's schema as views over the tables (fivetran.py)
    lift_properties: bool = False  # properties=columns: JSON properties lifted into columns (lift.py)
    property_cap: int = CAP
    account_column: bool = False  # every row carries the account's id (scoped.py)
    chosen_metrics: tuple[str, ...] = ()  # metrics=: the names or ids of the metrics whose events are read (chosen.py)
    notes: tuple[str, ...] = ()  # said before the run: what parsing noticed (unknown options)


def check_revision(revision: str, where: str = "--source-uri") -> str:
    """A ``revision=`` value: a date (optionally ``.pre``) from the first revision up to today."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", revision):
        raise UsageError(f"{where}: revision '{revision}' is not of the form YYYY-MM-DD")
    try:
        day = date.fromisoformat(revision[:10])
    except ValueError:
        raise UsageError(f"{where}: revision '{revision}' is not a date") from None
    if not date.fromisoformat(FIRST_REVISION) <= day <= date.today():
        raise UsageError(f"{where}: revision '{revision}' is not allowed; use a date from {FIRST_REVISION} "
                         f"(Klaviyo's first revision) to today, or leave it out for {REVISION}")  # fmt: skip
    return revision


def opt_in(specs: Mapping[str, TableSpec], config: KlaviyoConfig) -> dict[str, TableSpec]:
    """``specs`` with the opt-in columns ``config`` asks for: each one an extra column, its name added to the
    table's ``additional-fields[<type>]``, and the table paced by the lower rate limit that field brings."""
    out = dict(specs)
    for option, (table, rtype, allowed) in OPT_IN.items():
        values = getattr(config, option)
        if not values or table not in out:
            continue
        spec = out[table]
        key = f"additional-fields[{rtype}]"
        fields = [f for f in spec.extra_params.get(key, "").split(",") if f] + [v for v in allowed if v in values]
        limits = [allowed[v][1] for v in values if allowed[v][1]]
        burst, steady = min(limits) if limits else (spec.burst, spec.steady)
        out[table] = replace(spec, columns={**spec.columns, **{v: allowed[v][0] for v in allowed if v in values}},
                             extra_params={**spec.extra_params, key: ",".join(fields)}, burst=burst, steady=steady)  # fmt: skip
    return out


def opt_in_tables(specs: Mapping[str, TableSpec], config: KlaviyoConfig) -> dict[str, TableSpec]:
    """``specs`` with the opt-in tables ``config`` asks for in ``--source-table all`` (each is loaded when named
    anyway)."""
    out = dict(specs)
    for table in config.opt_in_tables:
        out[table] = replace(out[table], in_all=True)
    return out


def _names(raw: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip())


def parse(
    params: Mapping[str, object], where: str = "--source-uri", allowed: tuple[str, ...] = URI_PARAMS
) -> KlaviyoConfig:
    """The configuration ``params`` (option -> its text, as in the source URI) give; every problem a one-line
    :class:`UsageError` starting with ``where``. Unknown names are ignored with a note (as ingestr ignores them)."""
    notes = tuple(  # the values are never shown
        f"warning: {where}: unknown parameter '{name[:40]}' is ignored; allowed: {', '.join(allowed)}"
        for name in sorted(set(params) - set(allowed))
    )

    def given(name: str, default: str = "") -> str:  # the value as given (a dlt user may pass a number or a list)
        value = params.get(name)
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return default if value is None else str(value)

    def text(name: str) -> str:
        return given(name).strip()

    def number(name: str, low: int, high: int) -> int | None:
        raw = text(name)
        if not raw:
            return None
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise UsageError(f"{where}: {name} '{raw[:40]}' must be a whole number from {low} to {high}")
        return int(raw)

    key, env = text("api_key"), text("api_key_env")
    if key and env:
        raise UsageError(f"{where}: give api_key or api_key_env, not both")
    if env:  # the key from the environment: it need not be on the command line (nor in a file)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", env):
            raise UsageError(f"{where}: api_key_env '{env[:40]}' is not an environment variable's name")
        key = os.environ.get(env, "").strip()
        if not key:
            raise UsageError(f"{where}: api_key_env names {env}, which is not set in the environment; "
                             f"export {env}=pk_... (the account's private API key)")  # fmt: skip
    if not key:
        raise UsageError(f"{where}: klaviyo:// needs an api_key, e.g. klaviyo://?api_key=pk_... "
                         "(or api_key_env=NAME: the key in environment variable NAME)")  # fmt: skip
    if not KEY_FORM.fullmatch(key):  # the key itself never appears in the message
        raise UsageError(f"{where}: the api_key is not a Klaviyo private API key ({len(key):,} characters); "
                         "it must be pk_ followed by 34 letters and digits, as shown in Klaviyo's settings")  # fmt: skip
    base = given("base_url", DEFAULT_BASE_URL).rstrip("/")
    userinfo = re.match(r"([a-zA-Z][\w+.-]*://)?[^/?#]*@([^/?#]*)", base)
    if userinfo:  # aiohttp would send it as Basic auth beside the key; the password is never shown
        raise UsageError(f"{where}: base_url must not hold a user name or password ({userinfo.group(1) or ''}***@"
                         f"{userinfo.group(2)[:100]}); Klaviyo takes only the api_key: give base_url as scheme, host "
                         f"and port, such as {DEFAULT_BASE_URL} or http://127.0.0.1:8080")  # fmt: skip
    if not re.fullmatch(r"https?://[^/\s?#]+", base):
        raise UsageError(f"{where}: base_url '{base}' must be an http(s) URL with no path, such as "
                         f"{DEFAULT_BASE_URL} or http://127.0.0.1:8080")  # fmt: skip
    revision = check_revision(given("revision", REVISION), where)
    budget = number("report_budget", 1, DAILY_REPORT_REQUESTS)
    horizon = number("report_horizon_days", 0, 365)
    fields = {option: _names(text(option)) for option in OPT_IN}
    for option, values in fields.items():
        for v in values:
            if v not in OPT_IN[option][2]:
                raise UsageError(
                    f"{where}: {option} '{v[:40]}' is not allowed; allowed: {', '.join(OPT_IN[option][2])}"
                )
    tables = []
    for option, allowed in OPT_IN_TABLES.items():
        for v in _names(text(option)):
            if v not in allowed:
                raise UsageError(f"{where}: {option} '{v[:40]}' is not allowed; allowed: {', '.join(allowed)}")
            tables.append(allowed[v])
    lift = text("properties")
    if lift not in ("", "columns", "json"):
        raise UsageError(f"{where}: properties '{lift[:40]}' is not allowed; allowed: columns, json (the default)")
    cap = number("property_columns_max", 1, 1000)
    layout = text("layout")
    if layout and layout not in LAYOUTS:
        raise UsageError(f"{where}: layout '{layout[:40]}' is not allowed; allowed: {', '.join(LAYOUTS)}")
    column = text("account_column").lower()
    if column not in ("", "true", "false"):
        raise UsageError(f"{where}: account_column '{column[:40]}' is not allowed; allowed: true, false (the default)")
    chosen_metrics: tuple[str, ...] = ()
    if "metrics" in params:
        chosen_metrics = tuple(chosen.parse(given("metrics")))
        if not chosen_metrics:
            raise UsageError(f"{where}: metrics= names no metric; give metric names or ids, comma-separated, "
                             "e.g. metrics=Placed Order,Opened Email")  # fmt: skip
    return KlaviyoConfig(api_key=key, key_env=env, base_url=base, revision=revision,
                         conversion_metric_id=text("conversion_metric_id") or None,
                         report_budget=budget if budget is not None else REPORT_BUDGET,
                         report_horizon=timedelta(days=horizon) if horizon is not None else None,
                         metric_ids=_names(text("metric_ids")), **fields, opt_in_tables=tuple(tables), layout=layout,
                         lift_properties=lift == "columns", property_cap=cap if cap is not None else CAP,
                         account_column=column == "true", chosen_metrics=chosen_metrics, notes=notes)  # fmt: skip


def from_uri(uri: str) -> KlaviyoConfig:
    """The configuration a source URI gives; every problem a one-line :class:`UsageError`."""
    parts = urlsplit(uri)
    if parts.netloc:
        raise UsageError("--source-uri: klaviyo:// takes no host; give the API address as base_url=, "
                         "e.g. klaviyo://?api_key=pk_...&base_url=http://127.0.0.1:8080")  # fmt: skip
    query = parse_qs(parts.query, keep_blank_values=True)
    twice = sorted(k for k, v in query.items() if len(v) > 1)
    if twice:
        raise UsageError(f"--source-uri: parameter '{twice[0]}' is given more than once; give it once")
    return parse({name: values[0] for name, values in query.items()})
