"""The Klaviyo source URI: ``klaviyo://?api_key=pk_...`` and its options, checked before anything is read.

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
from dataclasses import replace
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

from ...errors import UsageError
from ...types import JSON
from . import chosen
from .client import DEFAULT_BASE_URL, REVISION
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


def check_revision(revision: str) -> str:
    """A ``revision=`` value: a date (optionally ``.pre``) from the first revision up to today."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", revision):
        raise UsageError(f"--source-uri: revision '{revision}' is not of the form YYYY-MM-DD")
    try:
        day = date.fromisoformat(revision[:10])
    except ValueError:
        raise UsageError(f"--source-uri: revision '{revision}' is not a date") from None
    if not date.fromisoformat(FIRST_REVISION) <= day <= date.today():
        raise UsageError(f"--source-uri: revision '{revision}' is not allowed; use a date from {FIRST_REVISION} "
                         f"(Klaviyo's first revision) to today, or leave it out for {REVISION}")  # fmt: skip
    return revision


def opt_in(specs: dict[str, TableSpec], query: dict[str, list[str]]) -> dict[str, TableSpec]:
    """``specs`` with the opt-in columns the URI asks for: each one an extra column, its name added to the
    table's ``additional-fields[<type>]``, and the table paced by the lower rate limit that field brings."""
    out = dict(specs)
    for option, (table, rtype, allowed) in OPT_IN.items():
        values = [v.strip() for v in (query.get(option) or [""])[0].split(",") if v.strip()]
        for v in values:
            if v not in allowed:
                raise UsageError(f"--source-uri: {option} '{v[:40]}' is not allowed; allowed: {', '.join(allowed)}")
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


def opt_in_tables(specs: dict[str, TableSpec], query: dict[str, list[str]]) -> dict[str, TableSpec]:
    """``specs`` with the opt-in tables the URI asks for in ``--source-table all`` (each is loaded when named
    anyway)."""
    out = dict(specs)
    for option, allowed in OPT_IN_TABLES.items():
        for v in [v.strip() for v in (query.get(option) or [""])[0].split(",") if v.strip()]:
            if v not in allowed:
                raise UsageError(f"--source-uri: {option} '{v[:40]}' is not allowed; allowed: {', '.join(allowed)}")
            out[allowed[v]] = replace(out[allowed[v]], in_all=True)
    return out


def report_options(source, query: dict[str, list[str]]):
    """The report options of the URI (see README, Reports), set on ``source``."""

    def number(name: str, low: int, high: int) -> int | None:
        raw = (query.get(name) or [""])[0].strip()
        if not raw:
            return None
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise UsageError(f"--source-uri: {name} '{raw}' must be a whole number from {low} to {high}")
        return int(raw)

    source.conversion_metric_id = (query.get("conversion_metric_id") or [""])[0].strip() or None
    budget = number("report_budget", 1, DAILY_REPORT_REQUESTS)
    source.report_budget = budget if budget is not None else REPORT_BUDGET
    horizon = number("report_horizon_days", 0, 365)
    source.report_horizon = timedelta(days=horizon) if horizon is not None else None
    source.metric_ids = [m.strip() for m in (query.get("metric_ids") or [""])[0].split(",") if m.strip()]
    return source


def from_uri(cls, uri: str):
    """A ``cls`` (the Klaviyo source) for ``uri``; every problem a one-line :class:`UsageError`."""
    parts = urlsplit(uri)
    if parts.netloc:
        raise UsageError("--source-uri: klaviyo:// takes no host; give the API address as base_url=, "
                         "e.g. klaviyo://?api_key=pk_...&base_url=http://127.0.0.1:8080")  # fmt: skip
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(URI_PARAMS))  # a warning, as ingestr ignores them; values are never shown
    notes = [f"warning: --source-uri: unknown parameter '{name[:40]}' is ignored; allowed: {', '.join(URI_PARAMS)}"
             for name in unknown]  # fmt: skip
    twice = sorted(k for k, v in query.items() if len(v) > 1)
    if twice:
        raise UsageError(f"--source-uri: parameter '{twice[0]}' is given more than once; give it once")
    key, env = (query.get("api_key") or [""])[0].strip(), (query.get("api_key_env") or [""])[0].strip()
    if key and env:
        raise UsageError("--source-uri: give api_key or api_key_env, not both")
    if env:  # the key from the environment: it need not be on the command line (nor in a file)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", env):
            raise UsageError(f"--source-uri: api_key_env '{env[:40]}' is not an environment variable's name")
        key = os.environ.get(env, "").strip()
        if not key:
            raise UsageError(f"--source-uri: api_key_env names {env}, which is not set in the environment; "
                             f"export {env}=pk_... (the account's private API key)")  # fmt: skip
    if not key:
        raise UsageError("--source-uri: klaviyo:// needs an api_key, e.g. klaviyo://?api_key=pk_... "
                         "(or api_key_env=NAME: the key in environment variable NAME)")  # fmt: skip
    if not KEY_FORM.fullmatch(key):  # the key itself never appears in the message
        raise UsageError(f"--source-uri: the api_key is not a Klaviyo private API key ({len(key):,} characters); "
                         "it must be pk_ followed by 34 letters and digits, as shown in Klaviyo's settings")  # fmt: skip
    base = (query.get("base_url") or [DEFAULT_BASE_URL])[0].rstrip("/")
    userinfo = re.match(r"([a-zA-Z][\w+.-]*://)?[^/?#]*@([^/?#]*)", base)
    if userinfo:  # aiohttp would send it as Basic auth beside the key; the password is never shown
        raise UsageError(f"--source-uri: base_url must not hold a user name or password ({userinfo.group(1) or ''}***@"
                         f"{userinfo.group(2)[:100]}); Klaviyo takes only the api_key: give base_url as scheme, host "
                         f"and port, such as {DEFAULT_BASE_URL} or http://127.0.0.1:8080")  # fmt: skip
    if not re.fullmatch(r"https?://[^/\s?#]+", base):
        raise UsageError(f"--source-uri: base_url '{base}' must be an http(s) URL with no path, such as "
                         f"{DEFAULT_BASE_URL} or http://127.0.0.1:8080")  # fmt: skip
    source = report_options(cls(key, base, check_revision((query.get("revision") or [REVISION])[0])), query)
    source.key_env = env
    source.specs = opt_in_tables(opt_in(source.specs, query), query)
    lift = (query.get("properties") or [""])[0].strip()
    if lift not in ("", "columns", "json"):
        raise UsageError(f"--source-uri: properties '{lift[:40]}' is not allowed; allowed: columns, json (the default)")
    source.lift_properties = lift == "columns"
    cap = (query.get("property_columns_max") or [""])[0].strip()
    if cap and (not cap.isdigit() or not 1 <= int(cap) <= 1000):
        raise UsageError(f"--source-uri: property_columns_max '{cap[:40]}' must be a whole number from 1 to 1000")
    source.property_cap = int(cap) if cap else source.property_cap
    source.layout = (query.get("layout") or [""])[0].strip()
    if source.layout and source.layout not in LAYOUTS:
        raise UsageError(f"--source-uri: layout '{source.layout[:40]}' is not allowed; allowed: {', '.join(LAYOUTS)}")
    column = (query.get("account_column") or [""])[0].strip().lower()
    if column not in ("", "true", "false"):
        raise UsageError(
            f"--source-uri: account_column '{column[:40]}' is not allowed; allowed: true, false (the default)"
        )
    source.account_column = column == "true"
    if "metrics" in query:
        source.chosen_metrics = chosen.parse(query["metrics"][0])
        if not source.chosen_metrics:
            raise UsageError("--source-uri: metrics= names no metric; give metric names or ids, comma-separated, "
                             "e.g. metrics=Placed Order,Opened Email")  # fmt: skip
    source.notes = notes
    return source
