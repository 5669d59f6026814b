#!/usr/bin/env python3
"""Checks GET /metrics of a live server with clients that are not ours.

- the default answer is the Prometheus text format, with the content type that says so (the
  text is then checked by `promtool check metrics` in run.sh);
- with `Accept: application/openmetrics-text` the answer is OpenMetrics, with its content type,
  and the strict OpenMetrics parser of the official Python client accepts it;
- every metric the example alert rules and the Grafana dashboard use is exposed;
- no label is a run id or a task id (label cardinality stays bounded).

Usage: metrics.py BASE_URL TEXT_OUT_FILE
"""

import json
import pathlib
import re
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOUNDED_LABELS = {"workflow", "status", "kind", "what", "version", "le"}


def get(url: str, accept: str | None) -> tuple[str, str]:
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers.get("Content-Type", ""), resp.read().decode()


def main() -> int:
    base, out = sys.argv[1], sys.argv[2]
    failures = []
    ctype, text = get(f"{base}/metrics", None)
    if not ctype.startswith("text/plain; version=0.0.4"):
        failures.append(f"default content type is {ctype!r}, not the text format's")
    pathlib.Path(out).write_text(text)

    ctype, om = get(f"{base}/metrics", "application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    if not ctype.startswith("application/openmetrics-text; version=1.0.0"):
        failures.append(f"OpenMetrics content type is {ctype!r}")
    families = {f.name: f for f in text_string_to_metric_families(om)}
    samples = {s.name for f in families.values() for s in f.samples}
    for f in families.values():
        if not f.documentation:
            failures.append(f"{f.name} has no HELP")
        for s in f.samples:
            extra = set(s.labels) - BOUNDED_LABELS
            if extra:
                failures.append(f"{s.name} has unbounded labels {sorted(extra)}")

    used = set()
    rules = (ROOT / "docs/monitoring/alerts.yml").read_text()
    dashboard = json.loads((ROOT / "docs/monitoring/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for text_ in [rules, *exprs]:
        used |= set(re.findall(r"\b((?:bulkhead|process)_[a-z_]+)\b", text_))
    missing = sorted(m for m in used if m not in samples and m not in families)
    if missing:
        failures.append(f"used by the alerts or the dashboard but not exposed: {missing}")

    print(f"metrics: {len(families)} families, {len(samples)} sample names; "
          f"alerts and dashboard use {len(used)} metrics, all exposed" if not missing else "")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
