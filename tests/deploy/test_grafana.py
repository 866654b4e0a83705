"""deploy/grafana: the checked-in dashboard is what build_dashboard.py builds, its panels
read only metrics the workers expose (or recorded ones), the accuracy and coverage rows are
built, and the row kept for drift is marked."""

from __future__ import annotations

import json

from deploy.grafana.build_dashboard import OUT, ROWS, queries, render
from tests.deploy.metric_names import known_names, names_in


def test_the_checked_in_dashboard_is_the_built_one() -> None:
    assert OUT.read_text() == render(), (
        "deploy/grafana/dashboards/profitstream.json is stale: "
        "run `python -m deploy.grafana.build_dashboard`"
    )


def test_every_panel_query_reads_known_metrics() -> None:
    known = known_names()
    panels = json.loads(OUT.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs == [q.expr for q in queries()]
    for expr in exprs:
        assert names_in(expr), expr
        assert names_in(expr) <= known, f"{expr} reads unknown {names_in(expr) - known}"


def test_each_titled_concern_has_a_panel_and_the_drift_row_waits() -> None:
    titles = " ".join(p.title.lower() for row in ROWS for p in row.panels)
    for concern in ("events consumed", "lag", "batch phases", "latency", "by reason",
                    "dead letters", "deployment", "experiment", "psi"):  # fmt: skip
        assert concern in titles, concern
    later = [row.title for row in ROWS if row.later is not None]
    assert later == []
    for row in ("Drift per feature", "Estimated vs realised accuracy", "Interval coverage"):
        assert next(r.panels for r in ROWS if r.title == row), row
    assert all(not row.panels for row in ROWS if row.later is not None)
