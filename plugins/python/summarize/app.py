"""A Bulkhead task in Python, built as a WebAssembly component (ABI v2) with componentize-py.

It summarises a numeric field of the rows its upstream tasks produced: `params.field` names the
field (default "value", numbers or numeric text); every upstream output that is a list of objects, or an object with a
`rows` list, contributes its rows. The output is {"count", "sum", "mean", "min", "max"}.
`params.fail: "transient"` fails on attempts before `params.fail_until` (to show retries).
"""

import json

from componentize_py_types import Err
import wit_world
from wit_world.imports import log
from wit_world.imports.types import ErrorKind, Level, Task, TaskError


def rows_of(value):
    if isinstance(value, list):
        return [r for r in value if isinstance(r, dict)]
    if isinstance(value, dict) and isinstance(value.get("rows"), list):
        return [r for r in value["rows"] if isinstance(r, dict)]
    return []


def number(value):
    """`value` as a number: a JSON number, or text that reads as one ("25.50"); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class WitWorld(wit_world.WitWorld):
    def run(self, task: Task) -> str:
        params = json.loads(task.params) or {}
        inputs = json.loads(task.inputs) or {}
        if params.get("fail") == "transient" and task.attempt < params.get("fail_until", 1 << 31):
            raise Err(TaskError(ErrorKind.TRANSIENT, f"not yet (attempt {task.attempt})"))
        field = params.get("field", "value")
        values = []
        for upstream, output in inputs.items():
            rows = rows_of(output)
            log.log(Level.DEBUG, "rows", [("from", upstream), ("count", str(len(rows)))])
            values += [n for n in (number(r.get(field)) for r in rows) if n is not None]
        if not values:
            raise Err(TaskError(ErrorKind.PERMANENT, f"no upstream row has a numeric `{field}`"))
        total = sum(values)
        log.log(Level.INFO, "summarised", [("field", field), ("count", str(len(values)))])
        return json.dumps({
            "count": len(values),
            "sum": total,
            "mean": total / len(values),
            "min": min(values),
            "max": max(values),
        })
