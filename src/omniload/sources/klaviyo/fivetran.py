"""Fivetran's Klaviyo schema as views over omniload's tables (``layout=fivetran``), for the dbt models that read it.

``event``, ``person``, ``campaign``, ``flow`` and ``metric``, with Fivetran's column names and types, as
``fivetran/dbt_klaviyo`` reads them: ``_fivetran_synced`` is the load's time (``_dlt_load_id``),
``_fivetran_deleted`` is our delete mark (``_omniload_deleted_at`` set); an event's ``type`` is its metric's name,
``campaign_id``/``flow_id``/``flow_message_id`` come from its ``$message``/``$flow`` (a campaign message's
campaign through ``campaign_messages`` when loaded), and every ``property_*`` column of ``events`` passes through.
Views, not tables: they read the tables every run and reconcile already keep current, cost nothing to keep, and
are re-created after each run, so a column a later load adds shows up (last: the property columns are in the
table's order, so PostgreSQL replaces the view in place, and the dbt models built on it keep it). Plain SQL that DuckDB and PostgreSQL
both read (``->>`` on JSON, ``to_timestamp``, an anchored ``~`` before a numeric cast). With ``account_column``
(several accounts in the tables) every view has ``account_id`` and the event view's joins match on it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..base import View

ACCOUNT = "account_id"  # account_column=true: every view passes it through, and joins match on it
Rel = Callable[[str], str]
Cols = dict[str, dict[str, None]]  # table -> its columns, in its order
NUMBER = "'^-?[0-9]+([.][0-9]+)?$'"


def _common(alias: str, cols: set[str]) -> str:
    deleted = f"{alias}._omniload_deleted_at is not null" if "_omniload_deleted_at" in cols else "false"
    account = f"{alias}.{ACCOUNT} as {ACCOUNT}, " if ACCOUNT in cols else ""
    return (f"{account}{deleted} as _fivetran_deleted, "
            f"to_timestamp(cast({alias}._dlt_load_id as double precision)) as _fivetran_synced")  # fmt: skip


def _same_account(a: str, b: str, cols: Cols, ta: str, tb: str) -> str:
    """A join's match on the account too, when both tables hold several accounts' rows (``account_column``)."""
    return f" and {b}.{ACCOUNT} = {a}.{ACCOUNT}" if ACCOUNT in cols.get(ta, ()) and ACCOUNT in cols.get(tb, ()) else ""


def _json_text(column: str, key: str) -> str:
    return f"{column}->>'{key}'"


def _json_number(column: str, key: str) -> str:
    text = _json_text(column, key)
    return f"case when {text} ~ {NUMBER} then cast({text} as double precision) end"


def _event(rel: Rel, cols: Cols) -> str:
    ev = cols["events"]
    # in the table's order, so that a new one comes last; property_attribution (dbt_klaviyo reads it) at its own place
    props = [c for c in ev if c.startswith("property_") and c != "property_attribution"]
    by_campaign = "cm.campaign_id" if "campaign-messages" in cols else "null"
    join = (f" left join {rel('campaign-messages')} cm on cm.id = e.property_message and e.property_flow is null"
            f"{_same_account('e', 'cm', cols, 'events', 'campaign-messages')}"
            if "campaign-messages" in cols else "")  # fmt: skip
    attribution = "e.property_attribution" if "property_attribution" in ev else "cast(null as varchar)"
    return (f"select e.id as id, {_common('e', ev)}, cast(null as varchar) as _variation, "
            f"case when e.property_flow is null and e.property_message is not null "
            f"then coalesce({by_campaign}, e.property_message) end as campaign_id, "
            f"e.datetime as datetime, e.datetime as timestamp, e.property_flow as flow_id, "
            f"case when e.property_flow is not null then e.property_message end as flow_message_id, "
            f"e.metric_id as metric_id, e.profile_id as person_id, m.name as type, e.uuid as uuid, "
            f"{attribution} as property_attribution" + "".join(f", e.{c} as {c}" for c in props)
            + f" from {rel('events')} e left join {rel('metrics')} m on m.id = e.metric_id"
            f"{_same_account('e', 'm', cols, 'events', 'metrics')}{join}")  # fmt: skip


def _person(rel: Rel, cols: Cols) -> str:
    loc = "p.location"
    fields = {"address_1": "address1", "address_2": "address2", "city": "city", "country": "country",
              "region": "region", "zip": "zip", "timezone": "timezone"}  # fmt: skip
    custom = [c for c in cols["profiles"] if c.startswith("custom_")]  # in the table's order, as props
    return (f"select p.id as id, {_common('p', cols['profiles'])}, p.email as email, p.phone_number as phone_number, "
            f"p.first_name as first_name, p.last_name as last_name, p.organization as organization, p.title as title, "
            f"p.created as created, p.updated as updated, p.last_event_date as last_event_date, "
            + ", ".join(f"{_json_text(loc, key)} as {col}" for col, key in fields.items())
            + f", {_json_number(loc, 'latitude')} as latitude, {_json_number(loc, 'longitude')} as longitude"
            + "".join(f", p.{c} as {c}" for c in custom) + f" from {rel('profiles')} p")  # fmt: skip


def _campaign(rel: Rel, cols: Cols) -> str:
    return (
        f"select c.id as id, {_common('c', cols['campaigns'])}, c.name as name, c.status as status, "
        f"c.archived as archived, c.created_at as created, c.updated_at as updated, c.send_time as send_time, "
        f"c.send_time as sent_at, c.scheduled_at as scheduled, c.channel as campaign_type from {rel('campaigns')} c"
    )


def _flow(rel: Rel, cols: Cols) -> str:
    return (f"select f.id as id, {_common('f', cols['flows'])}, f.name as name, f.status as status, "
            f"f.archived as archived, f.created as created, f.updated as updated, f.trigger_type as trigger_type "
            f"from {rel('flows')} f")  # fmt: skip


def _metric(rel: Rel, cols: Cols) -> str:
    i = "m.integration"
    return (f"select m.id as id, {_common('m', cols['metrics'])}, m.name as name, m.created as created, "
            f"m.updated as updated, {_json_text(i, 'id')} as integration_id, {_json_text(i, 'name')} as integration_name, "
            f"{_json_text(i, 'category')} as integration_category from {rel('metrics')} m")  # fmt: skip


VIEWS = [View("event", ("events", "metrics"), _event, optional=("campaign-messages",)), View("person", ("profiles",), _person),
         View("campaign", ("campaigns",), _campaign), View("flow", ("flows",), _flow),
         View("metric", ("metrics",), _metric)]  # fmt: skip
