#!/usr/bin/env python3
"""docs/workflow.schema.json and `bulkhead validate` must agree on every fixture.

Every workflow in tests/fixtures/valid, tests/fixtures/invalid and workflows/ goes through both
`bulkhead validate` and check-jsonschema (an independent JSON Schema validator). A file on which
they disagree fails the check unless it is listed in BEYOND_SCHEMA with the reason a JSON Schema
cannot say it; a listed file on which they agree fails too (the list must stay true).

Usage: schema_agreement.py BULKHEAD_BINARY
"""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "workflow.schema.json"

# Invalid for `bulkhead validate`, valid for any JSON Schema: what only the validator knows.
BEYOND_SCHEMA = {
    "cycle.yaml": "a dependency cycle is a property of the whole graph",
    "self_need.yaml": "a task needing itself refers to another key of the document",
    "unknown_need.yaml": "`needs` must name tasks of the same file",
    "unknown_plugin.yaml": "plugins are files in the plugin folder",
    "http_on_command.yaml": "whether a plugin is a component is a property of its file",
    "long_timeout.yaml": "a pattern can say what a duration looks like, not bound how long it is",
    "bad_param_values.yaml": "a default's and an enum's type is set by the sibling `type` key",
}


def validate(binary: str, path: pathlib.Path, plugins: pathlib.Path) -> tuple[bool, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["BULKHEAD_PLUGINS"] = str(plugins)
    out = subprocess.run([binary, "validate", str(path)], capture_output=True, text=True, env=env)
    if out.returncode not in (0, 2):
        sys.exit(f"bulkhead validate {path} exited {out.returncode}:\n{out.stderr}")
    return out.returncode == 0, out.stderr.strip()


def schema_check(path: pathlib.Path) -> tuple[bool, str]:
    out = subprocess.run(
        ["check-jsonschema", "--schemafile", str(SCHEMA), str(path)],
        capture_output=True,
        text=True,
    )
    return out.returncode == 0, (out.stdout + out.stderr).strip()


def main() -> int:
    binary = sys.argv[1]
    cases = []
    for folder, plugins in [
        (ROOT / "tests/fixtures/valid", ROOT / "target/test-plugins"),
        (ROOT / "tests/fixtures/invalid", ROOT / "target/test-plugins"),
        (ROOT / "workflows", ROOT / "plugins"),
    ]:
        cases += [(p, plugins) for p in sorted(folder.glob("*.yaml"))]
    failures = []
    for path, plugins in cases:
        ours, ours_says = validate(binary, path, plugins)
        theirs, theirs_say = schema_check(path)
        listed = path.name in BEYOND_SCHEMA and "invalid" in path.parts
        if ours != theirs and not listed:
            failures.append(
                f"{path.relative_to(ROOT)}: bulkhead validate says {'valid' if ours else 'invalid'}, "
                f"the JSON Schema says {'valid' if theirs else 'invalid'}\n"
                f"  bulkhead: {ours_says}\n  check-jsonschema: {theirs_say}"
            )
        elif listed and not (theirs and not ours):
            failures.append(
                f"{path.relative_to(ROOT)} is listed as beyond a schema ({BEYOND_SCHEMA[path.name]}), "
                f"but validate={ours} schema={theirs}: update BEYOND_SCHEMA"
            )
        if "invalid" not in path.parts and not ours:
            failures.append(f"{path.relative_to(ROOT)} should be valid: {ours_says}")
        if "invalid" in path.parts and ours:
            failures.append(f"{path.relative_to(ROOT)} should be invalid")
    print(f"schema agreement: {len(cases)} workflows, {len(BEYOND_SCHEMA)} listed as beyond a schema")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
