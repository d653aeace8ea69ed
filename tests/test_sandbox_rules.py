"""The sandbox ships Klaviyo's rules inside its package: the committed rules file is what its script generates
from the OpenAPI spec, and the sandbox starts and answers with no reference folder anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources

import pytest

from .conftest import http_get
from .reference import OPENAPI_NAME, build_rules, reference_path


@pytest.mark.skipif(reference_path(OPENAPI_NAME) is None, reason=f"{OPENAPI_NAME} is absent")
def test_regenerating_the_rules_file_gives_the_same_bytes(tmp_path):
    out = tmp_path / "rules.json"
    assert build_rules.main([str(reference_path(OPENAPI_NAME).parent), "--out", str(out)]) == 0
    committed = resources.files("klaviyo_sandbox").joinpath(build_rules.OUT.name).read_bytes()
    assert out.read_bytes() == committed, "run klaviyo-sandbox/scripts/build_rules.py and commit its output"


def test_the_sandbox_serves_with_no_reference_folder(tmp_path):
    """Run from an empty folder with the reference variable naming a missing one: the rules come from the package."""
    env = {**os.environ, "OMNILOAD_KLAVIYO_REFERENCE": str(tmp_path / "missing")}
    cmd = [sys.executable, "-m", "klaviyo_sandbox", "--scale", "tiny", "--rate-limits", "off"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        for path in ("/api/metrics", "/api/tag-groups"):
            resp = http_get(url, path)
            assert resp.status == 200 and resp.json["data"], (path, resp.body[:300])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
