"""`kubectl openclaw history`: archived runs by date, result and trigger (DESIGN §8), as a table, JSON or CSV."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..archive.model import CSV_FIELDS
from ..humanize import human_duration
from .archive import Archive, namespace_of
from .cluster import Ctx
from .common import EXIT_OK, dump, table, to_csv

COLUMNS = ("JOB", "RUN ID", "ATTEMPT", "TRIGGER", "SCHEDULED", "DURATION", "RESULT", "REASON")


def filters(a: Any) -> dict[str, str]:
    """The archive API's query parameters from the verb's options (validated by the server)."""
    query: dict[str, str] = {}
    for option, param in (("name", "job"), ("since", "since"), ("until", "until"), ("result", "result")):
        value = getattr(a, option, None)
        if value:
            query[param] = str(value)
    if getattr(a, "trigger", None):
        query["trigger"] = a.trigger
    return query


def csv_row(item: Mapping[str, Any]) -> list[object]:
    delivery = item.get("delivery") or {}
    row: list[object] = []
    for f in CSV_FIELDS:
        if f == "namespace":
            row.append((item.get("metadata") or {}).get("namespace"))
        elif f == "delivered":
            value = delivery.get("delivered")
            row.append("" if value is None else str(bool(value)).lower())
        elif f == "replyDisposition":
            row.append(delivery.get("replyDisposition") or "")
        else:
            row.append(item.get(f))
    return row


def table_row(item: Mapping[str, Any]) -> list[object]:
    duration = item.get("durationSeconds")
    return [
        item.get("job"),
        item.get("runId"),
        item.get("attempt"),
        item.get("trigger"),
        item.get("scheduledTime"),
        human_duration(duration) if isinstance(duration, int | float) else "<none>",
        item.get("result"),
        item.get("reason") or "",
    ]


def cmd_history(ctx: Ctx) -> int:
    a = ctx.args
    namespace = None if a.all_namespaces else namespace_of(ctx)
    items = Archive(ctx).runs(namespace, filters(a), a.limit or 50)
    if a.output == "json":
        ctx.out.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, "json"))
    elif a.output == "csv":
        ctx.out.write(to_csv(CSV_FIELDS, (csv_row(i) for i in items)))
    elif not items:
        where = "" if namespace is None else f" in {namespace} namespace"
        print(f"No archived runs found{where}.", file=ctx.err)
    else:
        headers = ["NAMESPACE", *COLUMNS] if namespace is None else list(COLUMNS)
        rows = []
        for i in items:
            row = table_row(i)
            rows.append([(i.get("metadata") or {}).get("namespace"), *row] if namespace is None else row)
        ctx.out.write(table(headers, rows))
    return EXIT_OK
