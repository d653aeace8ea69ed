"""Which form (and form version) a form event is about, deterministically: the link between the events of
the sandbox's form metrics and its forms that the form reports count.

An event of a form metric (records.FORM_METRICS) is about a form that existed when it happened, drawn from a
hash of the event's index, and one of that form's versions (form_versions.py). The event carries the
link in its properties as ``form_id`` and ``form_version_id``; other events carry nothing.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, mix
from .form_versions import count, version_id
from .records import FORM_METRICS, METRICS, Builder

FORM_M = np.array([name in FORM_METRICS for name in METRICS])


class FormLinks:
    def __init__(self, ds: Dataset, salt: int, forms: Builder) -> None:
        self.ds, self.salt, self.forms = ds, salt, forms

    def of(self, i: int, t_us: int, m: int) -> tuple[int, int] | None:
        """(form index, version number) of event ``i`` at ``t_us`` of metric ``m``, or None."""
        if not FORM_M[m % len(METRICS)]:
            return None
        a = mix(self.salt ^ (i * 131 + 0xF0))
        form = a % self.ds.timelines["forms"].count_at_least(t_us)
        return form, (a >> 32) % count(form)

    def ids(self, where: tuple[int, int]) -> tuple[str, str]:
        """(form id, form version id) of a link."""
        form, k = where
        return self.forms.id_of(form), version_id(self.forms, form, k)

    def props(self, where: tuple[int, int] | None) -> str:
        """The event-property text of a link (to add inside ``event_properties``)."""
        if where is None:
            return ""
        form_id, version_id = self.ids(where)
        return f',"form_id":"{form_id}","form_version_id":"{version_id}"'
