"""The report endpoints of the sandbox (``POST /api/*-reports``, ``/api/metric-aggregates``): numbers computed
from its own events, and the daily budget (225 requests per key and endpoint per day of the sandbox's clock:
429 with a daily detail). Bodies are checked as Klaviyo's spec says in report_rules.py; the requests are
answered by app.py's :func:`report_endpoint`. Campaign and flow reports and metric aggregates are computed
here; form and segment reports in audience_reports.py, with :func:`assemble` shaping every values or series answer.

A campaign's (flow's) statistics count the events attributed to its messages (attribution.py) by metric:
received, bounced, opened, clicked, spam, unsubscribed; conversions are the attributed events of the
conversion metric, their ``$value`` summed. :class:`Tally` holds the definitions; testing.py applies them to
the events as the API serves them.
"""

from __future__ import annotations

from collections import defaultdict

from .account_time import day_of, local_iso
from .attribution import FLOW
from .dataset import DAY_US, iso, mix
from .records import FORM_METRICS, METRICS
from .report_rules import DEFAULT_GROUPS, ReportQuery

NO_VALUE = {"Viewed Product", "Opened Email", "Clicked Email", *FORM_METRICS}  # their properties carry no $value


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


class Tally:
    """The events of one message grouping (one period): counts, distinct profiles, conversion value."""

    def __init__(self) -> None:
        self.n: dict[str, int] = defaultdict(int)
        self.who: dict[str, set] = defaultdict(set)
        self.value = 0.0

    def add(self, metric_name: str, profile: str, value: float | None, conversion: bool) -> None:
        self.n[metric_name] += 1
        self.who[metric_name].add(profile)
        if conversion:
            self.n["$conversion"] += 1
            self.who["$conversion"].add(profile)
            self.value += value or 0.0

    def statistics(self) -> dict[str, float | int]:
        n, u = self.n, {k: len(v) for k, v in self.who.items()}
        delivered = n["Received Email"] + n["Received SMS"]
        bounced = n["Bounced Email"]
        recipients = delivered + bounced
        opens_u, clicks_u = u.get("Opened Email", 0), len(self.who["Clicked Email"] | self.who["Clicked SMS"])
        conv, conv_u, value = n["$conversion"], u.get("$conversion", 0), round(self.value, 2)
        unsub_u = u.get("Unsubscribed", 0)
        return {
            "average_order_value": round(ratio(value, conv), 6), "bounce_rate": ratio(bounced, recipients), "bounced": bounced,
            "bounced_or_failed": bounced, "bounced_or_failed_rate": ratio(bounced, recipients),
            "click_rate": ratio(clicks_u, delivered), "click_to_open_rate": ratio(clicks_u, opens_u),
            "clicks": n["Clicked Email"] + n["Clicked SMS"], "clicks_unique": clicks_u,
            "conversion_rate": ratio(conv_u, delivered), "conversion_uniques": conv_u, "conversion_value": value,
            "conversions": conv, "delivered": delivered, "delivery_rate": ratio(delivered, recipients), "failed": 0,
            "failed_rate": 0.0, "message_segment_count_sum": 0, "open_rate": ratio(opens_u, delivered),
            "opens": n["Opened Email"], "opens_unique": opens_u, "recipients": recipients,
            "revenue_per_recipient": round(ratio(value, delivered), 6), "spam_complaint_rate": ratio(n["Marked Email as Spam"], delivered),
            "spam_complaints": n["Marked Email as Spam"], "text_message_credit_usage_amount": 0.0, "text_message_roi": 0.0,
            "text_message_spend": 0.0, "unsubscribe_rate": ratio(unsub_u, delivered), "unsubscribe_uniques": unsub_u,
            "unsubscribes": n["Unsubscribed"],
        }  # fmt: skip


def _events(state, q: ReportQuery):
    """(index, time, profile index, metric index) of every visible event in the query's span."""
    ev = state.events
    seq = ev.seq(int(q.start.timestamp() * 1e6), int(q.end.timestamp() * 1e6))
    for i in seq.run(0, seq.total, False):
        t = ev.time_us(i)
        p, m = ev.refs(i, t)
        yield i, t, p, m


def _value(state, i: int, m: int) -> float | None:
    return None if METRICS[m % len(METRICS)] in NO_VALUE else (mix(state.events.salt ^ (i * 7 + 3)) % 50000) / 100


def span_days(q: ReportQuery) -> tuple[int, int]:
    """(start in microseconds, number of local days) of a query's timeframe (a part day counts as a day)."""
    return q.bounds[0], max(1, len(q.bounds) - 1)


def day_index(q: ReportQuery, t_us: int) -> int:
    """The local day of the query that ``t_us`` falls in (0 for a values report: the whole timeframe)."""
    return day_of(q.bounds, t_us) if q.rules.series or q.metric_id is not None else 0


def assemble(q: ReportQuery, groups, days: int, start_us: int) -> dict:
    """``data.attributes`` of a values or series report from ``(groupings, statistics of day d)`` pairs, in order:
    a series holds every day's value of each statistic; a values report day 0's (the whole timeframe)."""
    results = []
    for groupings, day_stats in groups:
        if q.rules.series:
            series = [day_stats(d) for d in range(days)]
            stats = {s: [x[s] for x in series] for s in q.statistics}
        else:
            whole = day_stats(0)
            stats = {s: whole[s] for s in q.statistics}
        results.append({"groupings": {k: groupings[k] for k in q.group_by}, "statistics": stats})
    attrs: dict = {"results": results}
    if q.rules.series:
        attrs["date_times"] = [local_iso(q.bounds[d], q.zone) for d in range(days)]
    return attrs


def tallied(tallies: dict[tuple, dict[int, Tally]], names, empty=Tally):
    """``(groupings, statistics of day d)`` of tallies per group and day, groups in order."""
    for group, by_day in sorted(tallies.items()):
        yield (
            dict(zip(names, group, strict=False)),
            lambda d, by_day=by_day: (by_day[d] if d in by_day else empty()).statistics(),
        )


def message_report(state, q: ReportQuery) -> dict:
    """``data.attributes`` of a campaign or flow report."""
    ev, metrics = state.events, state.builders["metrics"]
    conv = metrics.index_of(q.conversion_metric_id or "")
    start_us, days = span_days(q)
    tallies: dict[tuple, dict[int, Tally]] = defaultdict(lambda: defaultdict(Tally))
    family = 0 if q.rules.family == "campaign" else 1
    for i, t, p, m in _events(state, q):
        where = ev.attribution.of(i, t, m)
        if where is None or where[0] != family:
            continue
        group = ev.attribution.message(where)
        tallies[group][day_index(q, t)].add(METRICS[m % len(METRICS)], str(p), _value(state, i, m), m == conv)
    return assemble(q, tallied(tallies, DEFAULT_GROUPS[q.rules.family]), days, start_us)


def _attributed(state, i: int, t: int, m: int, by: list[str]) -> list[str]:
    """The values of ``by`` ($attributed_flow, $attributed_message) of event ``i``: "" where it has none."""
    where = state.events.attribution.of(i, t, m)
    obj_id, mid, _ = state.events.attribution.message(where) if where is not None else ("", "", "")
    flow = obj_id if where is not None and where[0] == FLOW else ""
    return [flow if b == "$attributed_flow" else mid for b in by]


def metric_aggregate(state, q: ReportQuery) -> dict:
    """``data.attributes`` of a metric aggregate: one value per day and measurement, per group of ``by`` values
    (the attributed flow and message; "" for events attributed to none), groups in order."""
    wanted = state.builders["metrics"].index_of(q.metric_id or "")
    start_us, days = span_days(q)
    groups: dict[tuple, tuple[list, list, list]] = {}
    if not q.group_by:
        groups[()] = ([0] * days, [0.0] * days, [set() for _ in range(days)])
    for i, t, p, m in _events(state, q):
        if m == wanted:
            dims = tuple(_attributed(state, i, t, m, q.group_by))
            count, total, who = groups.setdefault(dims, ([0] * days, [0.0] * days, [set() for _ in range(days)]))
            d = day_index(q, t)
            count[d] += 1
            total[d] += _value(state, i, m) or 0.0
            who[d].add(p)
    data = []
    for dims, (count, total, who) in sorted(groups.items()):
        values = {"count": count, "sum_value": [round(v, 2) for v in total], "unique": [len(w) for w in who]}
        data.append({"dimensions": list(dims), "measurements": {k: values[k] for k in q.statistics}})
    return {"dates": [local_iso(q.bounds[d], q.zone) for d in range(days)], "data": data}


class DailyBudget:
    """Requests per (key, endpoint) on each day of the sandbox's clock."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str, str], int] = defaultdict(int)

    def take(self, key: str, path: str, now_us: int, limit: int | None) -> int:
        """0 when allowed (and counted), else the seconds until the sandbox's next midnight."""
        if limit is None:
            return 0
        day = iso(now_us - now_us % DAY_US)[:10]
        if self.used[(key, path, day)] >= limit:
            return max(1, (DAY_US - now_us % DAY_US) // 1_000_000)
        self.used[(key, path, day)] += 1
        return 0
