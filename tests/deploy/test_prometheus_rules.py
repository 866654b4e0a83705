"""deploy/prometheus: promtool passes the config, the rules and their unit tests; every alert
has its annotations, a runbook section, unit tests that see it fire and stay quiet, and
reads only metrics the workers expose (or recorded ones); the live test's copy of the
config differs from the repo's by the documented substitution only."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.metric_names import known_names, names_in
from tests.services.prometheus_server import (
    ALERT_SIGNALS,
    PROMETHEUS_DIR,
    ROOT,
    alert_rules,
    binary,
    config_dir,
    recording_rules,
)
from tests.test_docs import anchors

OPERATIONS = ROOT / "docs" / "operations.md"


def _promtool(*args: str) -> str:
    done = subprocess.run([binary("promtool"), *args], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _rule_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml")):
        tests.extend(yaml.safe_load(path.read_text())["tests"])
    return tests


def test_promtool_passes_the_config_the_rules_and_their_unit_tests() -> None:
    assert "SUCCESS" in _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    checked = _promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert f"SUCCESS: {len(alert_rules()) + len(recording_rules())} rules found" in checked
    tests = [str(p) for p in sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))]
    assert tests
    assert "SUCCESS" in _promtool("test", "rules", *tests)


def test_every_alert_is_annotated_with_a_runbook_section() -> None:
    sections = anchors(OPERATIONS)
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), rule["alert"]
        assert annotations["description"].strip(), rule["alert"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor in sections, f"docs/operations.md has no section #{anchor}"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for test in _rule_tests():
        for case in test.get("alert_rule_test", []):
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert fired == names
    assert quiet == names


def test_every_alert_signal_is_part_of_its_expression() -> None:
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in alert_rules()}
    assert set(ALERT_SIGNALS) == set(exprs)
    for name, signal in ALERT_SIGNALS.items():
        assert signal in exprs[name], name


def test_rules_read_only_metrics_the_workers_expose() -> None:
    known = known_names()
    for rule in alert_rules() + recording_rules():
        unknown = names_in(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule['record']} reads unknown {unknown}"
    assert known_names() - {"up"} > {"profitstream_ready"}  # the registry was read


def test_the_live_tests_config_differs_by_the_documented_substitution_only(
    tmp_path: Path,
) -> None:
    config = config_dir(tmp_path / "prometheus", ["127.0.0.1:6066"], "1s")
    ours = (PROMETHEUS_DIR / "prometheus.yml").read_text().splitlines()
    changed = [line for line in difflib.ndiff(ours, config.read_text().splitlines())
               if line[:1] in "+-"]  # fmt: skip
    assert sorted(changed) == sorted(["-   scrape_interval: 15s", "+   scrape_interval: 1s",
                                      "-   evaluation_interval: 15s",
                                      "+   evaluation_interval: 1s"])  # fmt: skip
    rules = (config.parent / "alerts.yml").read_bytes()
    assert rules == (PROMETHEUS_DIR / "alerts.yml").read_bytes()
    assert [p.name for p in (config.parent / "targets").iterdir()] == ["test.yml"]
    assert list((config.parent / "alertmanagers").iterdir()) == []
    assert "SUCCESS" in _promtool("check", "config", str(config))
