"""`kubectl openclaw validate`: check OpenClawCronJob manifests offline."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import yaml

from ..api import GROUP, KIND
from .cluster import Ctx
from .common import EXIT_ERROR, EXIT_FAILURE, EXIT_OK, CliError, _read


def _documents(data: Any) -> Iterable[Any]:
    if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
        yield from data["items"]
    elif data is not None:
        yield data


def validate_text(filename: str, text: str, now: datetime | None = None) -> tuple[list[str], list[str]]:
    """(error lines 'FILE: NAME: path: message', valid resource names); other kinds are ignored."""
    from .. import validation

    errors: list[str] = []
    valid: list[str] = []
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return [f"{filename}: invalid YAML{where}: {problem}"], []
    for raw in docs:
        for doc in _documents(raw):
            if not isinstance(doc, dict) or doc.get("kind") != KIND:
                continue
            if not str(doc.get("apiVersion", "")).startswith(f"{GROUP}/"):
                continue
            meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
            name = str(meta.get("name") or "<unnamed>")
            problems = validation.validate_metadata(str(meta.get("name") or ""))
            spec = doc.get("spec")
            if not isinstance(spec, dict):
                problems.append(validation.FieldError("spec", "required"))
            else:
                problems.extend(validation.validate(spec, now=now or datetime.now(UTC), name=meta.get("name") or None))
            if problems:
                errors.extend(f"{filename}: {name}: {p}" for p in problems)
            else:
                valid.append(name)
    return errors, valid


def cmd_validate(ctx: Ctx) -> int:
    code = EXIT_OK
    for path in ctx.args.files:
        try:
            text = _read(path)
        except CliError as exc:
            print(f"error: {exc}", file=ctx.err)
            code = EXIT_ERROR
            continue
        errors, valid = validate_text(path, text, ctx.now())
        for line in errors:
            print(line, file=ctx.out)
        for name in valid:
            print(f"{path}: {name}: valid", file=ctx.out)
        if errors and code == EXIT_OK:
            code = EXIT_FAILURE
    return code
