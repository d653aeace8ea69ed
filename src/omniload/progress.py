"""Progress and the final summary: a rich live table in a terminal, log lines or JSON lines otherwise.

Two row counts per table: *fetched* (from the API, live) and *loaded* (committed to the destination, slice by
slice); the summary reports loaded rows, so a failed table never claims rows it did not load. Each committed
slice is said (a ``committed`` line or JSON record): what is safely in the destination, were the run killed now.
When several sources load (accounts), a table is named ``<account>/<table>`` and the views and the summary get an
``account`` column.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field

from .sources.base import TableStats


@dataclass
class TableReport:
    table: str  # as the run names it: the table, or "<account>/<table>" when several sources load
    rows: int = 0  # fetched
    loaded: int = 0  # committed
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    no_cursor: int = 0  # records without a cursor value (loaded; they cannot move the saved cursor)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    status: str = "pending"
    error: str = ""
    fraction: float | None = None  # share of the table's interval covered so far
    account: str = ""  # the source's label when several load ("": one source)

    @property
    def name(self) -> str:
        """The table without its account."""
        return self.table[len(self.account) + 1 :] if self.account else self.table

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left, from the share of the interval covered so far (None until it is known)."""
        if self.finished or not self.fraction or self.fraction < 0.01:
            return None
        return self.seconds * (1 - self.fraction) / self.fraction

    @property
    def eta_text(self) -> str:
        eta = self.eta
        if eta is None:
            return "-"
        return f"{eta:.0f}s" if eta < 120 else f"{eta / 60:.0f}m"


class Progress:
    """Receives page counts per table and reports them in the chosen mode (interactive, log or json)."""

    def __init__(self, mode: str | None = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.mode = mode or ("interactive" if self.stream.isatty() else "log")
        self.tables: dict[str, TableReport] = {}
        self._last = 0.0
        self._live = None
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        if self.mode == "interactive":
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)

    def pending(self, tables: list[str], accounts: list[str] | None = None) -> None:
        """The tables this run will load, shown as pending until they start; ``accounts``: the account of each
        (several sources)."""
        for n, table in enumerate(tables):
            self.tables.setdefault(table, TableReport(table, account=accounts[n] if accounts else ""))
        if self._live is not None:
            self._live.update(self._render())

    def start(self, table: str) -> TableReport:
        old = self.tables.get(table)
        rep = self.tables[table] = TableReport(table, status="running", account=old.account if old else "")
        self._emit(rep, "start")
        return rep

    def committed(self, table: str, rows: int) -> None:
        """``rows`` more rows of ``table`` are committed in the destination (a slice: what a kill now would keep)."""
        rep = self.tables[table]
        rep.loaded += rows
        if self.mode == "json":
            self._line(json.dumps({"event": "committed", **self._ids(table), "rows": rows, "loaded": rep.loaded,
                                   "seconds": round(rep.seconds, 2)}))  # fmt: skip
        elif self.mode != "interactive" and rows:
            self._line(f"[{table}] committed: {rows:,} rows ({rep.loaded:,} loaded), {rep.seconds:.1f}s")

    def waiting(self, table: str, attempt: int, reason: str) -> None:
        """The API has not given a usable answer yet: say so, so that a silent API is never a silent run."""
        rep = self.tables[table]
        if self.mode == "json":
            self._line(json.dumps({"event": "waiting", **self._ids(table), "attempt": attempt, "reason": reason}))
        elif self._live is not None:
            rep.status = f"waiting (attempt {attempt})"
            self._live.update(self._render())
        else:
            self._line(f"[{table}] waiting for the API (attempt {attempt}): {reason}")

    def page(self, table: str, pages: int, rows: int) -> None:
        rep = self.tables[table]
        rep.pages += pages
        rep.rows += rows
        if rep.status.startswith("waiting"):  # an answer came: the live view stops saying it waits
            rep.status = "running"
        now = time.monotonic()
        if now - self._last >= (0.25 if self.mode == "interactive" else 5.0):
            self._last = now
            self._emit(rep, "progress")

    def note(self, table: str, message: str) -> None:
        """A one-line note about a table (shown above a live view, as a line or a JSON record otherwise)."""
        if self.mode == "json":
            self._line(json.dumps({"event": "note", **self._ids(table), "message": message}))
        elif self._live is not None:
            self._live.console.print(f"[{table}] note: {message}", markup=False)
        else:
            self._line(f"[{table}] note: {message}")

    def _ids(self, table: str) -> dict[str, str]:
        """A JSON record's table (and account, when several sources load)."""
        rep = self.tables.get(table)
        if rep is None or not rep.account:
            return {"table": table}
        return {"table": rep.name, "account": rep.account}

    def fraction(self, table: str, fraction: float) -> None:
        self.tables[table].fraction = max(0.0, min(1.0, fraction))

    def finish(self, table: str, status: str, error: str = "", stats: TableStats | None = None) -> None:
        rep = self.tables[table]
        rep.status, rep.error, rep.finished = status, error, time.monotonic()
        if stats is not None:
            rep.requests, rep.retries, rep.throttled = stats.requests, stats.retries, stats.throttled
            rep.no_cursor = stats.no_cursor
        self._emit(rep, "finish")

    def _emit(self, rep: TableReport, event: str) -> None:
        if self.mode == "interactive":
            if self._live is not None:
                self._live.update(self._render())
            return
        rate = rep.rows / rep.seconds if rep.seconds > 0 else 0.0
        if self.mode == "json":
            rec = {"event": event, "table": rep.name, **({"account": rep.account} if rep.account else {}), "rows": rep.loaded if event == "finish" else rep.rows,
                   "fetched": rep.rows, "pages": rep.pages, "rows_per_s": round(rate, 1), "seconds": round(rep.seconds, 2),
                   "eta_s": None if rep.eta is None else round(rep.eta, 1), "status": rep.status}  # fmt: skip
            if rep.error:
                rec["error"] = rep.error
            self._line(json.dumps(rec))
            return
        tail = f" error: {rep.error}" if rep.error else ""
        counts = (
            f"{rep.loaded:,} rows loaded ({rep.rows:,} fetched)" if event == "finish" else f"{rep.rows:,} rows fetched"
        )
        self._line(f"[{rep.table}] {event}: {counts}, {rep.pages:,} pages, {rate:,.0f} rows/s, "
                   f"{rep.seconds:.1f}s, ETA {rep.eta_text}, {rep.status}{tail}")  # fmt: skip

    def _line(self, text: str) -> None:
        """One whole line: tables report from several threads at once, and lines must not interleave."""
        with self._lock:
            print(text, file=self.stream, flush=True)

    def _render(self):
        from rich.table import Table

        done = sum(1 for r in self.tables.values() if r.finished)
        t = Table(title=f"omniload: {done:,} of {len(self.tables):,} tables done", expand=False)
        several = any(r.account for r in self.tables.values())
        for col in ("account",) * several + (
            "table",
            "status",
            "fetched",
            "loaded",
            "pages",
            "rows/s",
            "elapsed",
            "ETA",
        ):
            t.add_column(col, justify="right" if col not in ("account", "table", "status") else "left")
        for rep in self.tables.values():
            first = (rep.account, rep.name) if several else (rep.name,)
            if rep.status == "pending":
                t.add_row(*first, "pending", "-", "-", "-", "-", "-", "-")
                continue
            rate = rep.rows / rep.seconds if rep.seconds > 0 else 0
            t.add_row(*first, rep.status, f"{rep.rows:,}", f"{rep.loaded:,}", f"{rep.pages:,}", f"{rate:,.0f}",
                      f"{rep.seconds:,.1f}s", rep.eta_text)  # fmt: skip
        return t

    def summary(self, out=None) -> None:
        """The final table: rows loaded, requests, retries, 429s (records without a cursor value, when any) and
        duration per table (plain text in log mode)."""
        out = out or sys.stdout
        reps = list(self.tables.values())
        if self.mode == "json":
            for rep in reps:
                print(json.dumps({"event": "summary", "table": rep.name,
                                  **({"account": rep.account} if rep.account else {}), "status": rep.status, "rows": rep.loaded,
                                  "fetched": rep.rows, "requests": rep.requests, "retries": rep.retries,
                                  "throttled": rep.throttled, "no_cursor": rep.no_cursor, "seconds": round(rep.seconds, 2),
                                  "error": rep.error or None}),
                      file=out)  # fmt: skip
            return
        head = ("table", "status", "rows loaded", "requests", "retries", "429s", "duration")
        rows = [(r.table, r.status, f"{r.loaded:,}", f"{r.requests:,}", f"{r.retries:,}", f"{r.throttled:,}",
                 f"{r.seconds:,.1f}s") for r in reps]  # fmt: skip
        if any(r.no_cursor for r in reps):  # a column only when some table has such records
            head = (*head[:-1], "no cursor", head[-1])
            rows = [(*row[:-1], f"{r.no_cursor:,}", row[-1]) for row, r in zip(rows, reps, strict=False)]
        if any(r.account for r in reps):  # several sources: which account each row is
            head = ("account", *head)
            rows = [(r.account, r.name, *row[1:]) for row, r in zip(rows, reps, strict=False)]
        left = 3 if head[0] == "account" else 2  # the columns of text
        if self.mode == "log":
            widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
            for line in [head, *rows]:
                print(
                    "  ".join(
                        c.ljust(w) if i < left else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=False))
                    ).rstrip(),
                    file=out,
                )
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title="Summary")
        for col in head:
            t.add_column(col, justify="left" if col in ("account", "table", "status") else "right")
        for row in rows:
            t.add_row(*row)
        Console(file=out, width=120).print(t)
        for rep in reps:  # the live view showed statuses, not errors: one line per failed table
            if rep.error:
                print(f"error: {rep.error}", file=sys.stderr)
