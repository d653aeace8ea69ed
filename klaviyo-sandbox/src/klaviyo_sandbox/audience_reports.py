"""The sandbox's form and segment reports (``/api/form-*-reports``, ``/api/segment-*-reports``), computed from
its own records so that a test can recompute them from what the API serves (testing.py).

Forms: each statistic counts the events of one form metric whose ``form_id`` (and ``form_version_id``) is the
grouping's (form_events.py): ``viewed_form`` the "Viewed Form" events, ``viewed_form_uniques`` their distinct
profiles, ``submits`` the "Submitted Form" events, ``submit_rate`` submits over form views (Klaviyo: "the rate
of form submissions over form views"). Segments: ``members_added`` counts the memberships whose
``joined_group_at`` is in the period, ``members_removed`` those that ended in it (``children.left_at``: a share of
segment memberships end, before the sandbox's start clock), ``net_members_changed`` the difference and
``total_members`` the memberships begun and not ended at the period's end.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from . import children
from .records import METRICS
from .report_rules import ReportQuery
from .reports import Tally, _events, assemble, day_index, ratio, span_days, tallied

# form statistic -> the form metric it counts (a "<statistic>_uniques" counts that metric's distinct profiles)
FORM_COUNTS = {"viewed_form": "Viewed Form", "submits": "Submitted Form", "closed_form": "Closed Form",
               "qualified_form": "Qualified Form", "viewed_form_step": "Viewed Form Step",
               "submitted_form_step": "Submitted Form Step"}  # fmt: skip
FORM_UNIQUES = ("viewed_form", "closed_form", "qualified_form", "viewed_form_step", "submitted_form_step")


class FormTally(Tally):
    """The form events of one grouping (one period)."""

    def statistics(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {stat: self.n[metric] for stat, metric in FORM_COUNTS.items()}
        out.update({f"{stat}_uniques": len(self.who[FORM_COUNTS[stat]]) for stat in FORM_UNIQUES})
        out["submit_rate"] = ratio(out["submits"], out["viewed_form"])
        return out


def form_report(state, q: ReportQuery) -> dict:
    """``data.attributes`` of a form values or series report."""
    forms = state.events.forms
    start_us, days = span_days(q)
    tallies: dict[tuple, dict[int, FormTally]] = defaultdict(lambda: defaultdict(FormTally))
    by_version = "form_version_id" in q.group_by
    for i, t, p, m in _events(state, q):
        where = forms.of(i, t, m)
        if where is None or state.events.hidden(i):
            continue
        form_id, version_id = forms.ids(where)
        day = day_index(q, t)
        tallies[(form_id, version_id) if by_version else (form_id,)][day].add(
            METRICS[m % len(METRICS)], str(p), None, False
        )
    return assemble(q, tallied(tallies, ("form_id", "form_version_id"), FormTally), days, start_us)


def segment_counts(joined_us: np.ndarray, left_us: np.ndarray, bounds_us: list[int]) -> list[dict[str, int]]:
    """The statistics of each period ``[bounds[k], bounds[k+1])`` of one segment, from its memberships' start and
    end times (``children.NEVER``: not ended)."""
    joins = np.searchsorted(np.sort(joined_us), bounds_us, side="left").tolist()
    leaves = np.searchsorted(np.sort(left_us), bounds_us, side="left").tolist()
    out = []
    for k in range(len(bounds_us) - 1):
        added, removed = joins[k + 1] - joins[k], leaves[k + 1] - leaves[k]
        out.append({"members_added": added, "members_removed": removed, "net_members_changed": added - removed,
                    "total_members": joins[k + 1] - leaves[k + 1]})  # fmt: skip
    return out


def segment_history(state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment index, joined_us, left_us) of every segment membership there ever was (children.counted): the
    current ones and those that ended."""
    ds, name = state.dataset, "segment-memberships"
    keep = children.counted(ds, name)
    return children.parents(ds, name)[keep], ds.arrays(name)[0][keep], children.left_at(ds, name)[keep]


def segment_report(state, q: ReportQuery) -> dict:
    """``data.attributes`` of a segment values or series report: one result per segment that exists now."""
    ds = state.dataset
    start_us, days = span_days(q)
    end_us = int(q.end.timestamp() * 1e6)
    bounds = q.bounds if q.rules.series else [start_us, end_us]
    of, joined, left = segment_history(state)
    live = ds.live_mask("segments", ds.count("segments"))
    segments = state.builders["segments"]
    groups = []
    for s in sorted(np.nonzero(live)[0].tolist(), key=segments.id_of):
        stats = segment_counts(joined[of == s], left[of == s], bounds)
        groups.append(({"segment_id": segments.id_of(s)}, stats.__getitem__))
    return assemble(q, groups, days, start_us)


BUILDERS = {"form": form_report, "segment": segment_report}
