#!/usr/bin/env python3
"""A real Prometheus server scrapes the live Bulkhead server: the scrape must succeed (no parse
error, target up), the samples must be queryable, and the example alert rules must load and
evaluate without errors.

Usage: scraped.py PROMETHEUS_URL
"""

import json
import sys
import time
import urllib.parse
import urllib.request


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def query(base: str, q: str) -> list:
    return get(f"{base}/api/v1/query?query={urllib.parse.quote(q)}")["data"]["result"]


def main() -> int:
    base = sys.argv[1]
    deadline = time.monotonic() + 60
    last = "Prometheus did not answer"
    while time.monotonic() < deadline:
        try:
            targets = get(f"{base}/api/v1/targets")["data"]["activeTargets"]
            health = [(t["health"], t.get("lastError", "")) for t in targets]
            if health and health[0][0] == "up" and query(base, 'bulkhead_runs_total{workflow="hello"}'):
                break
            last = f"targets: {health}"
            if health and health[0][0] == "down" and health[0][1]:
                print(f"FAIL the scrape failed: {health[0][1]}")
                return 1
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    else:
        print(f"FAIL Prometheus never scraped a run count: {last}")
        return 1
    # Rules are evaluated every second: wait for one evaluation and check none failed.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        groups = get(f"{base}/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("2") and not r["lastEvaluation"].startswith("0001") for r in rules):
            bad = [(r["name"], r["lastError"]) for r in rules if r.get("health") != "ok"]
            if bad:
                print(f"FAIL alert rules do not evaluate: {bad}")
                return 1
            print(f"scraped: target up, {len(rules)} alert rules evaluate")
            return 0
        time.sleep(0.5)
    print("FAIL the alert rules were never evaluated")
    return 1


if __name__ == "__main__":
    sys.exit(main())
