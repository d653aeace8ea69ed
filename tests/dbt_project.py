"""Run Fivetran's dbt package for Klaviyo (``fivetran/dbt_klaviyo``, unmodified) on a database omniload loaded.

The packages live in ``../shared/dbt/`` beside the repository (or ``$OMNILOAD_DBT_PACKAGES``), never in it; dbt
cannot fetch them here, so a throw-away root project lists each as ``local:`` and links it into
``dbt_packages/`` in place of ``dbt deps``. dbt (dbt-core 1.11 with dbt-duckdb) is a test-only dependency.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"klaviyo": "dbt_klaviyo", "fivetran_utils": "fivetran_utils", "dbt_utils": "dbt_utils",
            "spark_utils": "spark_utils"}  # fmt: skip


def packages_dir() -> Path:
    env = os.environ.get("OMNILOAD_DBT_PACKAGES")
    return Path(env) if env else ROOT.parent / "shared" / "dbt"


def model_names() -> set[str]:
    """Every model of dbt_klaviyo (its ``models/**/*.sql``)."""
    return {p.stem for p in (packages_dir() / "dbt_klaviyo" / "models").rglob("*.sql")}


def duckdb_profile(db: str) -> dict:
    return {"type": "duckdb", "path": db, "schema": "main"}


def postgres_profile(server, database: str) -> dict:
    from .pg import PASSWORD, USER

    return {"type": "postgres", "host": "127.0.0.1", "port": server.port, "user": USER, "password": PASSWORD,
            "dbname": database, "schema": "main"}  # fmt: skip


def build(workdir: Path, profile: dict, schema: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """``dbt build`` of dbt_klaviyo over ``schema`` of the database ``profile`` names (``duckdb_profile``,
    ``postgres_profile``); (the process, run_results' results)."""
    project = workdir / "dbt_root"
    (project / "dbt_packages").mkdir(parents=True)
    for name, folder in PACKAGES.items():
        (project / "dbt_packages" / name).symlink_to(packages_dir() / folder)
    (project / "packages.yml").write_text(
        "packages:\n" + "".join(f"  - local: {packages_dir() / folder}\n" for folder in PACKAGES.values())
    )
    (project / "dbt_project.yml").write_text(
        "name: omniload_check\nversion: '1.0'\nconfig-version: 2\nprofile: omniload_check\n"
        f"vars:\n  klaviyo_schema: {schema}\n"
        "dispatch:\n  - macro_namespace: dbt_utils\n    search_order: ['spark_utils', 'dbt_utils']\n"
        "flags:\n  send_anonymous_usage_stats: false\n"
    )
    (project / "profiles.yml").write_text(
        json.dumps(  # JSON is YAML
            {"omniload_check": {"target": "dev", "outputs": {"dev": {**profile, "threads": 1}}}}
        )
    )
    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "DBT_PROFILES_DIR": str(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = subprocess.run([str(dbt), "build", "--no-use-colors"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    results = project / "target" / "run_results.json"
    return proc, json.loads(results.read_text())["results"] if results.exists() else []
