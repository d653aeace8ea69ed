"""PostgreSQL: ``postgresql://user:password@host:5432/database`` (or ``postgres://``); default schema ``public``.

Preflight connects once (a wrong password or a refused connection fails before any work, redacted)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..uri import redact
from .base import Destination


@dataclass
class Postgres(Destination):
    def preflight(self) -> None:
        self.require_packages()
        import psycopg2

        c = self.credentials
        try:
            psycopg2.connect(dbname=c["database"], user=c["username"], password=c["password"], host=c["host"],
                             port=c.get("port", 5432), connect_timeout=10).close()  # fmt: skip
        except psycopg2.Error as exc:
            reason = redact(str(exc).strip().splitlines()[0]).replace(c["password"] or "\0", "***")
            raise UsageError(f"--dest-uri: cannot connect to {self.display}: {reason}") from None
