"""Pure Kubernetes API machinery the emulated API server needs and kmock does not have.

Selectors, the three PATCH flavours, structural-schema pruning and validation, Status
bodies and server-side Tables, written to match kube-apiserver's observable behaviour
(not its code), so that what passes against the emulator also passes against a cluster.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


class ApiError(Exception):
    """An API failure rendered as a `kind: Status` body, exactly as kube-apiserver does."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(plural: str, group: str) -> str:
    """`pods` or `openclawcronjobs.cron.openclaw.io`, as messages name a resource."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    details: JSON = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return ApiError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found', details)


def already_exists(plural: str, group: str, name: str) -> ApiError:
    details: JSON = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return ApiError(409, "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists', details)


def conflict(plural: str, group: str, name: str) -> ApiError:
    details: JSON = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": '
        "the object has been modified; please apply your changes to the latest version and try again",
        details,
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid with field causes; `causes` are (field, message) pairs."""
    text = "; ".join(f"{field}: {message}" for field, message in causes)
    what = f"{kind}.{group}" if group else kind
    details: JSON = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
    }
    if group:
        details["group"] = group
    message = f'{what} "{name}" is invalid: {text}' if len(causes) == 1 else f'{what} "{name}" is invalid: [{text}]'
    return ApiError(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# --- time ----------------------------------------------------------------------------------


def rfc3339(when: datetime | None = None) -> str:
    """Second precision UTC, as the API server writes metav1.Time."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: what `kubectl get` shows as AGE."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None) -> str:
    when = parse_time(timestamp) if timestamp else None
    if when is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - when).total_seconds())


# --- selectors -----------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

Matcher = Callable[[Mapping[str, str]], bool]


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b`)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> Matcher:
    """Equality- and set-based label selectors; a malformed one is a 400, as on a server."""
    if not text:
        return lambda labels: True
    tests: list[Matcher] = []
    for term in _split_top(text):
        if m := re.fullmatch(r"([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif m := re.fullmatch(r"([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)", term):
            key, op, value = m.groups()
            if op == "!=":
                tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif m := re.fullmatch(r"!\s*([^\s!=(),]+)", term):
            absent = m.group(1)
            tests.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[^\s!=(),]+", term):
            tests.append(lambda labels, k=term: k in labels)
        else:
            raise bad_request(f"unable to parse requirement: invalid label selector: {text!r}")
    return lambda labels: all(test(labels) for test in tests)


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(text: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """`metadata.name=x,status.phase!=Running`: any dotted path, `=`, `==`, `!=`."""
    if not text:
        return lambda obj: True
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for term in _split_top(text):
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise bad_request(f"invalid selector: {text!r}; can't understand {term!r}")
        path, op, value = m.groups()
        if op == "!=":
            tests.append(lambda obj, p=path, v=value: (field_value(obj, p) or "") != v)
        else:
            tests.append(lambda obj, p=path, v=value: (field_value(obj, p) or "") == v)
    return lambda obj: all(test(obj) for test in tests)


def label_problems(labels: Mapping[str, Any], field: str = "metadata.labels") -> list[tuple[str, str]]:
    """What the API server's label validation would refuse (422)."""
    problems: list[tuple[str, str]] = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (
            not name
            or len(name) > 63
            or not _LABEL_NAME.match(name)
            or (prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)))
        ):
            problems.append((field, f'Invalid value: "{key}": name part must be a valid label name'))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append((field, f'Invalid value: "{value}": a valid label must be 63 characters or less'))
    return problems


# --- patches -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


#: Strategic-merge keys of the core/v1 lists we serve (patchMergeKey in the Go types).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "tolerations": "",  # atomic
    "finalizers": "$set",  # primitive list with merge strategy
}


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge patch for core types, covering what kubectl and clients send.

    Lists with a merge key merge element-wise; `$patch: delete|replace`, `$retainKeys`,
    `$setElementOrder/…` and `$deleteFromPrimitiveList/…` directives are honoured or
    dropped like the server does for the fields we serve.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in value]
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, key)
        elif isinstance(value, list):
            result[key] = [
                {k: v for k, v in x.items() if k != "$patch"} if isinstance(x, dict) else x
                for x in value
                if not (isinstance(x, dict) and x.get("$patch") == "delete")
            ]
        else:
            result[key] = strategic_merge_patch(result.get(key), value, key)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: list[Any], patch: list[Any], field: str) -> list[Any]:
    strategy = _MERGE_KEYS.get(field, "")
    if strategy == "$set":
        return list(current) + [x for x in patch if x not in current]
    if not strategy or not all(isinstance(x, dict) for x in patch + current):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(current)
    for item in patch:
        key = item.get(strategy)
        index = next((i for i, x in enumerate(merged) if x.get(strategy) == key), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            merged[index] = strategic_merge_patch(merged[index], item, field)
    return merged


class JsonPatchTestFailed(Exception):
    """A `test` operation did not hold: the server answers 422."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(doc: Any, ops: Iterable[Mapping[str, Any]]) -> Any:
    """RFC 6902 JSON patch (add/remove/replace/move/copy/test)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        try:
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise JsonPatchTestFailed(f"test failed at {op.get('path')}")
                continue
            if kind in ("move", "copy"):
                value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
                if kind == "move":
                    doc = _remove(doc, _pointer(op["from"]))
                doc = _add(doc, parts, value)
            elif kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                doc = _remove(doc, parts)
            elif kind == "replace":
                _walk(doc, parts)  # must exist
                doc = _add(_remove(doc, parts), parts, copy.deepcopy(op.get("value")))
            else:
                raise bad_request(f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise JsonPatchTestFailed(f"{kind} at {op.get('path')}: {e!r}") from e
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise KeyError(last)
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return None
    parent = _walk(doc, parts[:-1])
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]
    return doc


# --- structural schemas --------------------------------------------------------------------


def prune(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """Drop fields a structural schema does not declare, as the server does silently."""
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        if isinstance(value, dict) and schema and "properties" in schema:
            props = schema["properties"]
            return {k: prune(v, props.get(k)) if k in props else v for k, v in value.items()}
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            return {k: prune(v, props[k]) for k, v in value.items() if k in props}
        if isinstance(extra, dict):
            return {k: prune(v, extra) for k, v in value.items()}
        if extra is True or schema.get("type") != "object":
            return value
        return {}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(v, schema["items"]) for v in value]
    return value


def apply_defaults(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """Structural-schema defaulting: absent fields with a `default` appear, top-down (no nulls)."""
    if not schema:
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            sub = props.get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            value[key] = apply_defaults(item, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def validate(value: Any, schema: Mapping[str, Any] | None, path: str = "") -> list[tuple[str, str]]:
    """OpenAPI v3 checks the API server applies (type, enum, bounds, pattern, required).

    CEL rules (`x-kubernetes-validations`) are not evaluated: a known gap.
    """
    if not schema:
        return []
    problems: list[tuple[str, str]] = []
    where = path or "<root>"
    if value is None:
        if schema.get("nullable"):
            return []
        if schema.get("type"):
            return [(where, f'Invalid value: "null": {where} in body must be of type {schema["type"]}: "null"')]
        return []
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            problems.append((where, "Invalid value: must be an integer or a string"))
        return problems
    if kind and kind in _TYPES and not _TYPES[kind](value):
        got = type(value).__name__
        return [(where, f'Invalid value: "{got}": {where} in body must be of type {kind}: "{got}"')]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(e) for e in schema["enum"])
        problems.append((where, f"Unsupported value: {json.dumps(value)}: supported values: {allowed}"))
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append((where, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(
                (
                    where,
                    f"Invalid value: {json.dumps(value)}: {where} in body should be at least "
                    f"{schema['minLength']} chars long",
                )
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(
                (where, f"Invalid value: {json.dumps(value)}: {where} in body should match '{schema['pattern']}'")
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(
                (
                    where,
                    f"Invalid value: {value}: {where} in body should be greater than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(
                (where, f"Invalid value: {value}: {where} in body should be less than or equal to {schema['maximum']}")
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append((where, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
        for i, item in enumerate(value):
            problems += validate(item, schema.get("items"), f"{path}[{i}]")
    if isinstance(value, dict):
        for req in schema.get("required", []):
            if req not in value:
                problems.append((f"{path}.{req}" if path else req, "Required value"))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
            problems += validate(item, sub, f"{path}.{key}" if path else key)
    return problems


# --- tables --------------------------------------------------------------------------------

NAME_COLUMN: JSON = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def _column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> JSON:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def jsonpath_value(obj: Any, path: str) -> Any:
    """The `.a.b[0].c` JSONPath subset CRD printer columns use (also `{.a.b}`)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    value = obj
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path):
        key, index = part
        if key:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
    return value


def _printer_cell(kind: str, value: Any) -> Any:
    """apiextensions-apiserver's cellForJSONValue (dates become human ages server-side)."""
    if value is None:
        return None
    if kind == "integer":
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "number":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        if not isinstance(value, str):
            return None
        return age(value) if parse_time(value) else "<invalid>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def crd_table(columns: list[JSON] | None) -> tuple[list[JSON], Callable[[JSON], list[Any]]]:
    """Column definitions and a row function from a CRD version's additionalPrinterColumns."""
    if not columns:
        defs = [NAME_COLUMN, _column("Age", "date")]
        return defs, lambda obj: [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))]
    defs = [NAME_COLUMN] + [
        {
            "name": c["name"],
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]

    def row(obj: JSON) -> list[Any]:
        return [obj["metadata"]["name"]] + [
            _printer_cell(c.get("type", "string"), jsonpath_value(obj, c["jsonPath"])) for c in columns
        ]

    return defs, row


def _pod_row(pod: JSON) -> list[Any]:
    """kubectl's printPod, simplified: NAME READY STATUS RESTARTS AGE IP NODE."""
    status = pod.get("status", {})
    spec = pod.get("spec", {})
    statuses = status.get("containerStatuses", [])
    total = len(spec.get("containers", []))
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in reversed(statuses):
        state = c.get("state", {})
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            term = state["terminated"]
            reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
    if status.get("reason"):
        reason = status["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts,
        age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
    ]


def _event_row(event: JSON) -> list[Any]:
    obj = event.get("involvedObject", {})
    last = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    first = event.get("firstTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    source = event.get("source", {}).get("component") or event.get("reportingComponent") or ""
    return [
        age(last),
        event.get("type", ""),
        event.get("reason", ""),
        f"{obj.get('kind', '').lower()}/{obj.get('name', '')}",
        obj.get("fieldPath", ""),
        source,
        event.get("message", ""),
        age(first),
        event.get("count", 1),
        event["metadata"]["name"],
    ]


def builtin_table(plural: str) -> tuple[list[JSON], Callable[[JSON], list[Any]]]:
    """Server-side printers of the built-in resources kubectl users look at."""
    if plural == "pods":
        defs = [
            NAME_COLUMN,
            _column("Ready"),
            _column("Status"),
            _column("Restarts", "string"),
            _column("Age"),
            _column("IP", priority=1),
            _column("Node", priority=1),
        ]
        return defs, _pod_row
    if plural == "events":
        defs = [
            _column("Last Seen"),
            _column("Type"),
            _column("Reason"),
            _column("Object"),
            _column("Subobject", priority=1),
            _column("Source", priority=1),
            _column("Message"),
            _column("First Seen", priority=1),
            _column("Count", "integer", priority=1),
            _column("Name", priority=1),
        ]
        return defs, _event_row
    if plural == "namespaces":
        defs = [NAME_COLUMN, _column("Status"), _column("Age")]
        return defs, lambda o: [
            o["metadata"]["name"],
            o.get("status", {}).get("phase", ""),
            age(o["metadata"].get("creationTimestamp")),
        ]
    if plural == "secrets":
        defs = [NAME_COLUMN, _column("Type"), _column("Data", "integer"), _column("Age")]
        return defs, lambda o: [
            o["metadata"]["name"],
            o.get("type", ""),
            len(o.get("data", {})),
            age(o["metadata"].get("creationTimestamp")),
        ]
    defs = [NAME_COLUMN, _column("Created At", "date")]
    return defs, lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]


def table(
    columns: list[JSON],
    row: Callable[[JSON], list[Any]],
    objects: list[JSON],
    resource_version: str,
    include_object: str = "Metadata",
) -> JSON:
    """A meta.k8s.io/v1 Table, as `kubectl get` asks for with `as=Table`."""
    rows = []
    for obj in objects:
        if include_object == "Object":
            embedded: Any = obj
        elif include_object == "None":
            embedded = None
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append({"cells": row(obj), "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }


# --- protobuf (what kubectl's typed clients send for `kubectl create secret|namespace|...`) ----

_TIME = {1: ("seconds", "int"), 2: ("nanos", "int")}
_OWNER = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
_META = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", _TIME),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
    13: ("ownerReferences", ("repeated", _OWNER)),
    14: ("finalizers", ("repeated", "string")),
}
PROTO_KINDS: dict[str, dict[int, tuple[str, Any]]] = {
    "Namespace": {1: ("metadata", _META), 2: ("spec", {1: ("finalizers", ("repeated", "string"))})},
    "Secret": {
        1: ("metadata", _META),
        2: ("data", ("map", "bytes")),
        3: ("type", "string"),
        4: ("stringData", ("map", "string")),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", _META),
        2: ("data", ("map", "string")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "bool"),
    },
    "ServiceAccount": {1: ("metadata", _META), 4: ("automountServiceAccountToken", "bool")},
}


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """Raw protobuf fields: (number, int | bytes)."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            length = varint()
            out.append((number, data[i : i + length]))
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, int.from_bytes(data[i : i + size], "little")))
            i += size
        else:
            raise bad_request(f"unsupported protobuf wire type {wire}")
    return out


def _decode(data: bytes, schema: Mapping[int, tuple[str, Any]]) -> JSON:
    result: JSON = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == "map":
            entry = dict(_fields(raw))
            value = entry.get(2, b"")
            key = entry.get(1, b"").decode()
            result.setdefault(name, {})[key] = (
                base64.b64encode(value).decode() if kind[1] == "bytes" else value.decode()
            )
        elif isinstance(kind, tuple) and kind[0] == "repeated":
            item = kind[1]
            result.setdefault(name, []).append(raw.decode() if item == "string" else _decode(raw, item))
        elif kind is _TIME:
            t = _decode(raw, _TIME)
            if t.get("seconds"):
                result[name] = rfc3339(datetime.fromtimestamp(t["seconds"], UTC))
        elif isinstance(kind, dict):
            result[name] = _decode(raw, kind)
        elif kind == "string":
            if raw:
                result[name] = raw.decode()
        elif kind == "bytes":
            result[name] = base64.b64encode(raw).decode()
        elif kind == "bool":
            result[name] = bool(raw)
        else:
            result[name] = raw
    return result


def decode_protobuf(body: bytes) -> JSON:
    """A `k8s\\0`-enveloped protobuf object of a kind in PROTO_KINDS, as JSON."""
    if not body.startswith(b"k8s\x00"):
        raise bad_request("the body of the request was in an unknown format")
    envelope = dict(_fields(body[4:]))
    type_meta = dict(_fields(envelope.get(1, b"")))
    api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
    if kind not in PROTO_KINDS:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"protobuf bodies of kind {kind!r} are not supported by the "
            "emulated API server; send JSON (kubectl apply -f / create -f)",
        )
    obj = _decode(envelope.get(2, b""), PROTO_KINDS[kind])
    return {"apiVersion": api_version, "kind": kind, **obj}
