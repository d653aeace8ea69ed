"""Open table formats that merge in place: Delta Lake and Iceberg tables through dlt's filesystem destination.

| URI | where |
|---|---|
| ``delta:///dir``, ``iceberg:///dir`` (``////`` absolute) | a local folder |
| ``parquet:///dir?table_format=delta`` (or ``iceberg``) | the same, as a parameter of a file URI |
| ``s3://bucket/path?table_format=delta&endpoint_url=...&access_key_id=...&secret_access_key=...&region=...`` | an S3 or S3-compatible bucket; Delta unless ``table_format=iceberg`` |

S3 credentials come from the URI or from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_ENDPOINT_URL``/
``AWS_REGION``; the secret is redacted in every message. One table per folder ``<dir>/<schema>/<table>``; merge
tables are upserted on the primary key (dlt's ``upsert`` strategy), so a record has one row, and each format keeps
its own history (Delta versions, Iceberg snapshots). ``--partition-by`` partitions the table. Delta needs
``deltalake``, Iceberg ``pyiceberg`` (``pip install 'omniload[delta]'`` / ``'omniload[iceberg]'``; S3 ``[s3]``).
Deleted rows are marked by dlt merges (tombstones.py), read back with the format's own reader; dlt deletes
rows (``--hard-deletes``) from Delta tables only. One run at a time loads a local table (a lock file in the root
folder, locks.py; runs of other tables go on beside it, and dlt's listing of the saved states tolerates a file
another run's clean-up deletes, statefiles.py); on S3 nothing locks it: run one omniload run per table.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import UsageError
from ..uri import redact, register_secret
from .base import Destination
from .deletes import DELETED
from .files import folder, holds_all, newest_stored, stored_files
from .locks import folder_table_lock
from .state import decode_state
from .statefiles import tolerate_removed_files
from .tombstones import DltDeletes, fill
from .wakeup import wake_on_finalized_jobs

TABLE_FORMATS = {"delta": ("deltalake", "delta"), "iceberg": ("pyiceberg", "iceberg")}
S3_PARAMS = ("table_format", "endpoint_url", "access_key_id", "secret_access_key", "region", "session_token")


@dataclass
class Lake(DltDeletes, Destination):
    bucket_url: str = ""
    table_format: str = "delta"

    @classmethod
    def parse(cls, scheme: str, uri: str) -> Lake:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(uri).query, keep_blank_values=True).items()}
        fmt = scheme if scheme in TABLE_FORMATS else query.get("table_format", "delta").lower()
        if fmt not in TABLE_FORMATS:
            raise UsageError(f"--dest-uri: table_format '{fmt}' is not allowed; allowed: {', '.join(TABLE_FORMATS)}")
        module, extra = TABLE_FORMATS[fmt]
        if scheme == "s3":
            return cls._s3(uri, query, fmt, module)
        p = folder(scheme, uri)
        display = f"{scheme}:///{p}" + (f"?table_format={fmt}" if scheme not in TABLE_FORMATS else "")
        return cls(scheme, "filesystem", display, bucket_url=Path(p).resolve().as_uri(), table_format=fmt,
                   package=(module, extra), supports_scd2=False, partitions=True)  # fmt: skip

    @classmethod
    def _s3(cls, uri: str, query: dict[str, str], fmt: str, module: str) -> Lake:
        parts = urlsplit(uri)
        unknown = sorted(set(query) - set(S3_PARAMS))
        if unknown:
            raise UsageError(f"--dest-uri: unknown parameter '{unknown[0]}'; allowed: {', '.join(S3_PARAMS)}")
        if not parts.hostname:
            raise UsageError("--dest-uri: s3:// needs a bucket, e.g. s3://bucket/path?table_format=delta")
        env = os.environ.get
        creds: dict[str, Any] = {
            "aws_access_key_id": unquote(parts.username or "") or query.get("access_key_id") or env("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": unquote(parts.password or "") or query.get("secret_access_key") or env("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": query.get("session_token") or env("AWS_SESSION_TOKEN"),
            "endpoint_url": query.get("endpoint_url") or env("AWS_ENDPOINT_URL"),
            "region_name": query.get("region") or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
        }  # fmt: skip
        for secret in (creds["aws_secret_access_key"], creds["aws_session_token"]):
            if secret:
                register_secret(secret)
        bucket_url = f"s3://{parts.hostname}{parts.path.rstrip('/')}"
        return cls("s3", "filesystem", redact(uri), credentials={k: v for k, v in creds.items() if v}, bucket_url=bucket_url,
                   table_format=fmt, package=(module, "s3"), supports_scd2=False, partitions=True)  # fmt: skip

    def table_lock(self, schema: str, table: str, on_wait: Callable[[str], None]):
        """Local tables: a lock file in the root folder. S3 has no lock here (one run per table)."""
        if self.scheme == "s3":
            return super().table_lock(schema, table, on_wait)
        return folder_table_lock(self._root(), schema, table, self.lock_wait, self.display, on_wait)

    def require_packages(self) -> None:
        super().require_packages()
        if self.scheme == "s3" and self.package:
            import importlib.util

            if importlib.util.find_spec("s3fs") is None:
                raise UsageError(
                    "--dest-uri: s3:// needs extra packages; install them with: pip install 'omniload[s3]'"
                )

    def write_disposition(self, how: str) -> Any:
        """A merge upserts on the primary key: each record keeps one row, updated in place."""
        return {"disposition": "merge", "strategy": "upsert"} if how == "merge" else how

    def scoped_replace(self) -> tuple[Any, bool]:
        """An upsert on the key: the scope's rows the slice holds are replaced, those it no longer holds stay (Delta and
        Iceberg merge by upsert only)."""
        return self.write_disposition("merge"), False

    @property
    def hard_refusal(self) -> str:  # type: ignore[override]
        if self.table_format == "iceberg":
            return ("dlt merges Iceberg tables without deleting rows; run without --hard-deletes and deleted records "
                    "are marked (_omniload_deleted_at), or use Delta")  # fmt: skip
        return ""

    def column_hints(self, hints: dict[str, dict]) -> dict[str, dict]:
        """Iceberg tables hold ``_omniload_deleted_at`` from their first load (empty until a reconcile marks a row):
        pyiceberg 0.12 upserts only rows with every column of the table, and a reconcile may add the column to a
        table while the same run loads it."""
        if self.table_format != "iceberg":
            return hints
        return {**hints, DELETED: {"data_type": "timestamp", "nullable": True}}

    def _add_mark(self, p, table: str) -> None:
        """Iceberg tables loaded before they held the column: it is added and the table rewritten once, so that
        every data file holds it (pyiceberg 0.12 cannot upsert rows with a column that older data files lack)."""
        if self.table_format == "iceberg":
            from dlt.common.libs.pyiceberg import get_iceberg_tables
            from pyiceberg.types import TimestamptzType

            iceberg = get_iceberg_tables(p, table)[table]
            with iceberg.update_schema() as update:
                update.add_column(DELETED, TimestamptzType())
            iceberg.overwrite(iceberg.scan().to_arrow())

    def _delete(self, p, table: str, key, keys) -> bool:
        """Delta rows are deleted by a merge of deltalake's own (``when_matched_delete``): dlt's upsert into Delta
        honours the ``hard_delete`` hint only from dlt 1.31 on, and 1.30 would overwrite the rows with the bare
        keys instead."""
        if self.table_format != "delta":
            return False
        import pyarrow as pa
        from dlt.common.libs.deltalake import get_delta_tables

        delta = get_delta_tables(p, table)[table]
        types = delta.to_pyarrow_dataset().schema
        source = keys.select(list(key)).cast(pa.schema([types.field(c) for c in key]))
        on = " AND ".join(f"target.{c} = source.{c}" for c in key)
        delta.merge(
            source=source, predicate=on, source_alias="source", target_alias="target"
        ).when_matched_delete().execute()
        return True

    def saved_state(self, pipeline_name: str, schema: str, pipeline: Callable[[], Any]) -> dict[str, Any]:
        """Local tables: the newest state file of the table's pipeline read directly, the one dlt's sync restores
        (a sync costs about 60 ms, and a table's state is read twice a run); S3, or a file that does not read as a
        state: through dlt."""
        if self.scheme != "s3":
            path = newest_stored(self._root(), schema, "_dlt_pipeline_state", pipeline_name)
            if not path:
                return {}
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                return decode_state(json.loads(Path(path).read_text(encoding="utf-8"))["state"])
        return super().saved_state(pipeline_name, schema, pipeline)

    def already_loaded(self, schema: str, table: str, key: tuple[str, ...], cursor: str, rows) -> bool:
        """Every fetched (key, cursor) is in the local Delta table (its key and cursor columns read with deltalake,
        only the fetched keys' files); Iceberg, S3, or an unreadable table: unknown (load)."""
        if rows.num_rows == 0:
            return True
        if self.table_format != "delta" or self.scheme == "s3":
            return False
        import pyarrow.compute as pc

        cols = [*key, cursor]
        try:
            from deltalake import DeltaTable

            path = Path(self._root()) / schema / table
            if not (path / "_delta_log").is_dir():
                return False
            data = DeltaTable(str(path)).to_pyarrow_dataset()
            wanted = rows.select(cols)
            lead = wanted.column(key[0]).cast(data.schema.field(key[0]).type)
            loaded = data.to_table(columns=cols, filter=pc.field(key[0]).isin(pc.unique(lead)))
            loaded = loaded.select(cols).cast(wanted.schema)  # as the source gives them (units, zones)
        except Exception:  # noqa: BLE001 - a column missing or not comparable: take the safe path, load
            return False
        return holds_all(loaded, wanted)

    def _stored(self, p) -> tuple[str, str] | None:
        """Local tables: the newest stored state and schema files (S3: unknown, every use syncs)."""
        return None if self.scheme == "s3" else stored_files(self._root(), p)

    def _root(self) -> str:
        """The local folder of a ``delta:///``/``iceberg:///`` destination."""
        return unquote(urlsplit(self.bucket_url).path)

    def _rows(self, p, table: str, cols: dict, columns: list[str], where):
        """Through the table format's reader (dlt opens the table)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.table_format == "delta":
            from dlt.common.libs.deltalake import get_delta_tables

            data = get_delta_tables(p, table)[table].to_pyarrow_dataset()
        else:
            from dlt.common.libs.pyiceberg import get_iceberg_tables

            data = get_iceberg_tables(p, table)[table].scan().to_arrow()
        rows = (
            data.to_table(columns=[c for c in columns if c in data.schema.names])
            if self.table_format == "delta"
            else data
        )
        rows = fill(rows, cols, columns, p)
        if where:
            rows = rows.filter(
                pc.is_in(rows.column(where[0]).cast(pa.string()), value_set=pa.array(where[1], pa.string()))
            )
        return rows

    def dlt_destination(self):
        import dlt

        wake_on_finalized_jobs()  # a load does not sleep a second on the table's finalized jobs
        if self.scheme != "s3":
            tolerate_removed_files()  # another run's clean-up of its saved states while this one lists them
            return dlt.destinations.filesystem(bucket_url=self.bucket_url)
        from dlt.common.configuration.specs import AwsCredentials

        creds = AwsCredentials(**self.credentials)
        # S3 has no atomic rename; one omniload run per table is the writer, so Delta may commit without a lock
        return dlt.destinations.filesystem(bucket_url=self.bucket_url, credentials=creds,
                                           deltalake_storage_options={"AWS_S3_ALLOW_UNSAFE_RENAME": "true"})  # fmt: skip
