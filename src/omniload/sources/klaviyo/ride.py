"""An include table riding along with its parent table's requests (event attributions with events).

When both tables are loaded in one run and the parent runs first (they share a rate-limit group, so they run one
after the other, in ``TABLES`` order), the parent's reader asks for ``include=<rider>`` and hands each page's
included records, cut to the page's window as its own rows are, to a :class:`Ride`: a spool on disk (Arrow IPC),
so memory does not grow with the run. The rider's reader then loads the spooled rows instead of listing the
parent endpoint again, provided the parent's slices read without a gap cover what the rider still needs:
from where the rider's last run stopped (``through``, saved with its rows) less its lookback, to the parent's
end. Otherwise (the parent failed or read a later interval) the rider reads the API itself.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from ...runtime import work_prefix
from .spec import TableSpec


class Ride:
    """The rider's rows read along with the parent's slices, and which interval those slices covered."""

    def __init__(self, rider: TableSpec, schema: pa.Schema) -> None:
        self.rider, self.schema = rider, schema
        # named as the run's work folder (omniload-<pid>-): a later run removes it if this process was killed
        fd, self.path = tempfile.mkstemp(prefix=work_prefix(f"{rider.name}-"), suffix=".arrows")
        self._sink = os.fdopen(fd, "wb")
        self._writer = ipc.new_stream(self._sink, schema)
        self.lo: datetime | None = None  # the covered interval [lo, hi): the parent's slices read to their end
        self.hi: datetime | None = None
        self.started = False

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)

    def covered(self, lo: datetime | None, hi: datetime) -> None:
        """The parent read slice ``[lo, hi)`` to its end (slices come in order: a gap ends the coverage)."""
        if not self.started:
            self.lo, self.hi, self.started = lo, hi, True
        elif self.hi is not None and lo == self.hi:
            self.hi = hi

    def covers(self, need: datetime | None) -> bool:
        """Whether the spooled rows hold everything from ``need`` (None: the beginning) to the parent's end."""
        return self.hi is not None and (self.lo is None or (need is not None and self.lo <= need))

    def rows(self, batch_rows: int) -> Iterator[pa.Table]:
        """The spooled rows, ``batch_rows`` at a time (then the spool is deleted)."""
        self._writer.close()
        self._sink.close()
        try:
            with open(self.path, "rb") as f:
                buffer: list[pa.Table] = []
                n = 0
                for batch in ipc.open_stream(f):
                    buffer.append(pa.Table.from_batches([batch]))
                    n += batch.num_rows
                    if n >= batch_rows:
                        yield pa.concat_tables(buffer)
                        buffer, n = [], 0
                if buffer:
                    yield pa.concat_tables(buffer)
        finally:
            self.discard()

    def discard(self) -> None:
        if not self._sink.closed:
            self._writer.close()
            self._sink.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def need_from(saved: dict, start: datetime | None, lookback: timedelta, parse) -> datetime | None:
    """Where the rider's rows are still needed from: its last run's ``through`` less the lookback (the loader's
    start less the saved cursor tells the lookback in force); without a saved ``through``, the loader's start."""
    through = saved.get("through")
    if not through:
        return start
    last = saved.get("last_value")
    if last and start is not None:
        lookback = parse(last) - start
    return parse(through) - lookback


def after(table: pa.Table, column: str, lo: datetime | None) -> pa.Table:
    """The rows with ``column >= lo`` (all when ``lo`` is None), and those without a value (where else would they go)."""
    if lo is None or table.num_rows == 0:
        return table
    keep = pc.greater_equal(table.column(column), pa.scalar(lo, pa.timestamp("us", tz="UTC")))
    return table.filter(pc.or_kleene(keep, pc.is_null(table.column(column))))
