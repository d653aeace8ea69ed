"""Klaviyo's reference files for the tests that compare against the spec itself (``../shared/klaviyo/`` beside
the repository, or ``OMNILOAD_KLAVIYO_REFERENCE``), and the schema helpers of the sandbox's rules builder."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_rules", ROOT / "klaviyo-sandbox" / "scripts" / "build_rules.py")
build_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_rules)

OPENAPI_NAME = build_rules.OPENAPI_NAME
DIGEST_NAME = f"endpoints-{build_rules.REVISION}.json"
flat, deref = build_rules.flat, build_rules.deref


def reference_path(name: str) -> Path | None:
    """The reference file ``name``, or None when the folder does not hold it."""
    path = build_rules.reference_dir() / name
    return path if path.is_file() else None


@cache
def load(name: str) -> dict[str, Any]:
    """A reference file, parsed."""
    return json.loads((build_rules.reference_dir() / name).read_text())
