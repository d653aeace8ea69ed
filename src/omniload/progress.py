"""Progress and the final summary: rich live bars in a terminal, log lines or JSON lines otherwise."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

from .sources.base import TableStats


@dataclass
class TableReport:
    table: str
    rows: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    status: str = "running"
    error: str = ""
    fraction: float | None = None  # share of the table's interval covered so far

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

    def __enter__(self) -> "Progress":
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

    def start(self, table: str) -> TableReport:
        rep = self.tables[table] = TableReport(table)
        self._emit(rep, "start")
        return rep

    def page(self, table: str, pages: int, rows: int) -> None:
        rep = self.tables[table]
        rep.pages += pages
        rep.rows += rows
        now = time.monotonic()
        if now - self._last >= (0.25 if self.mode == "interactive" else 5.0):
            self._last = now
            self._emit(rep, "progress")

    def nothing_new(self, table: str) -> None:
        """The rows fetched were all loaded before: the run loads none."""
        self.tables[table].rows = 0

    def note(self, table: str, message: str) -> None:
        """A one-line note about a table (shown above a live view, as a line or a JSON record otherwise)."""
        if self.mode == "json":
            print(json.dumps({"event": "note", "table": table, "message": message}), file=self.stream, flush=True)
        elif self._live is not None:
            self._live.console.print(f"[{table}] note: {message}", markup=False)
        else:
            print(f"[{table}] note: {message}", file=self.stream, flush=True)

    def fraction(self, table: str, fraction: float) -> None:
        self.tables[table].fraction = max(0.0, min(1.0, fraction))

    def finish(self, table: str, status: str, error: str = "", stats: TableStats | None = None) -> None:
        rep = self.tables[table]
        rep.status, rep.error, rep.finished = status, error, time.monotonic()
        if stats is not None:
            rep.requests, rep.retries, rep.throttled = stats.requests, stats.retries, stats.throttled
        self._emit(rep, "finish")

    def _emit(self, rep: TableReport, event: str) -> None:
        if self.mode == "interactive":
            if self._live is not None:
                self._live.update(self._render())
            return
        rate = rep.rows / rep.seconds if rep.seconds > 0 else 0.0
        if self.mode == "json":
            rec = {"event": event, "table": rep.table, "rows": rep.rows, "pages": rep.pages, "rows_per_s": round(rate, 1),
                   "seconds": round(rep.seconds, 2), "eta_s": None if rep.eta is None else round(rep.eta, 1),
                   "status": rep.status}  # fmt: skip
            if rep.error:
                rec["error"] = rep.error
            print(json.dumps(rec), file=self.stream, flush=True)
        else:
            tail = f" error: {rep.error}" if rep.error else ""
            print(f"[{rep.table}] {event}: {rep.rows:,} rows, {rep.pages:,} pages, {rate:,.0f} rows/s, "
                  f"{rep.seconds:.1f}s, ETA {rep.eta_text}, {rep.status}{tail}", file=self.stream, flush=True)  # fmt: skip

    def _render(self):
        from rich.table import Table

        t = Table(title="omniload", expand=False)
        for col in ("table", "status", "rows", "pages", "rows/s", "elapsed", "ETA"):
            t.add_column(col, justify="right" if col not in ("table", "status") else "left")
        for rep in self.tables.values():
            rate = rep.rows / rep.seconds if rep.seconds > 0 else 0
            t.add_row(rep.table, rep.status, f"{rep.rows:,}", f"{rep.pages:,}", f"{rate:,.0f}", f"{rep.seconds:.1f}s", rep.eta_text)
        return t

    def summary(self, out=None) -> None:
        """The final table: rows, requests, retries, 429s and duration per table."""
        out = out or sys.stdout
        reps = list(self.tables.values())
        if self.mode == "json":
            for rep in reps:
                print(json.dumps({"event": "summary", "table": rep.table, "status": rep.status, "rows": rep.rows,
                                  "requests": rep.requests, "retries": rep.retries, "throttled": rep.throttled,
                                  "seconds": round(rep.seconds, 2), "error": rep.error or None}), file=out)  # fmt: skip
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title="Summary")
        for col in ("table", "status", "rows", "requests", "retries", "429s", "duration"):
            t.add_column(col)
        for rep in reps:
            t.add_row(rep.table, rep.status, f"{rep.rows:,}", str(rep.requests), str(rep.retries), str(rep.throttled),
                      f"{rep.seconds:.1f}s")  # fmt: skip
        Console(file=out, width=120).print(t)
        if self.mode == "interactive":  # log lines already said it, one line per table
            for rep in reps:
                if rep.error:
                    print(f"error: {rep.error}", file=sys.stderr)
