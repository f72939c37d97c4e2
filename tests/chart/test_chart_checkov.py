"""checkov over the rendered manifests of every profile: no failed check left unexplained.

Accepted findings live in checkov_skips.yaml, one entry per check ID with its reason and the
resources it covers (fnmatch patterns: the profiles install under other release names). A finding that is not listed fails the test, and so does a listed entry
that no longer fails anywhere (the list must not outlive its reasons).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from chart_render import REPO
from helm_chart import PROFILES

CHECKOV = Path(os.environ.get("CHECKOV", REPO / ".tools" / "checkov" / "bin" / "checkov"))
SKIPS_FILE = Path(__file__).with_name("checkov_skips.yaml")


# checkov scans every profile (~15 s): part of `make test`, not of `make test-fast`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkov_report(rendered_profiles, tmp_path_factory):
    if not CHECKOV.is_file():
        pytest.skip(f"checkov not installed at {CHECKOV}; `make tools` installs it")
    folder = tmp_path_factory.mktemp("rendered")
    for profile, objects in rendered_profiles.items():
        (folder / f"{profile}.yaml").write_text(yaml.safe_dump_all(objects))
    proc = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode not in (0, 1):  # 1: some checks failed
        pytest.fail(f"checkov did not run: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    return report if isinstance(report, dict) else report[0]


def test_checkov_ran_over_every_profile(checkov_report):
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] > 0


def test_no_failed_check_is_unexplained(checkov_report):
    skips = yaml.safe_load(SKIPS_FILE.read_text())
    unexplained = set()
    for failed in checkov_report["results"]["failed_checks"]:
        entry = skips.get(failed["check_id"])
        allowed = entry and (
            entry["resources"] == "all"
            or any(fnmatch.fnmatchcase(failed["resource"], p) for p in entry["resources"])
        )
        if not allowed:
            unexplained.add(
                f"{failed['check_id']} ({failed['check_name']}) on {failed['resource']}"
            )
    assert not unexplained, (
        "checkov findings without a reason in checkov_skips.yaml:\n"
        + "\n".join(sorted(unexplained))
    )


def test_every_skip_has_a_reason_and_still_applies(checkov_report):
    skips = yaml.safe_load(SKIPS_FILE.read_text())
    failed = {(f["check_id"], f["resource"]) for f in checkov_report["results"]["failed_checks"]}
    for check_id, entry in skips.items():
        assert len(entry.get("reason", "")) > 40, f"{check_id}: give a real reason"
        resources = entry["resources"]
        if resources == "all":
            assert any(c == check_id for c, _ in failed), f"{check_id} no longer fails: remove it"
        else:
            stale = [
                p
                for p in resources
                if not any(c == check_id and fnmatch.fnmatchcase(r, p) for c, r in failed)
            ]
            assert not stale, (
                f"{check_id} no longer fails on {stale}: remove them from checkov_skips.yaml"
            )


def test_report_summary(checkov_report, capsys):
    summary = checkov_report["summary"]
    by_check = Counter(f["check_id"] for f in checkov_report["results"]["failed_checks"])
    with capsys.disabled():
        print(
            f"\ncheckov over {len(PROFILES)} profiles: {summary['passed']} passed, {summary['failed']} failed "
            f"(all explained in {SKIPS_FILE.name}: {dict(sorted(by_check.items()))}), {summary['skipped']} skipped"
        )
