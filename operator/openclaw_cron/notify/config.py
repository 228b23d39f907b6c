"""The channels file: ``{channels: {name: {type: ..., ...}}}`` parsed into Channels.

Shared fields (``type``, ``timeoutSeconds``, the TLS settings) are read here; each channel
class reads its own (``Channel.from_config``), found by ``type`` in ``channels.TYPES``.
Unknown fields are refused so a typo surfaces at startup, and errors name the channel and
the field, never a value: the file holds secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .channels import TYPES, Channel
from .errors import NotifyConfigError
from .reader import ConfigReader

#: Fields every entry may have, whatever its type.
COMMON_FIELDS = frozenset({"type", "timeoutSeconds", "insecureSkipVerify", "caFile"})


def parse_channel(name: str, raw: object) -> Channel:
    """One channel from its mapping; unknown fields are refused so typos surface at startup."""
    if not isinstance(raw, Mapping):
        raise NotifyConfigError(f"notify channel {name!r}: must be a mapping")
    r = ConfigReader(name, raw)
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in TYPES:  # (a list or a mapping is no type either)
        raise r.fail("type", f"must be one of {', '.join(sorted(TYPES))}")
    cls = TYPES[kind]
    unknown = sorted(set(raw) - cls.required_fields - cls.optional_fields - COMMON_FIELDS)
    if unknown:
        raise r.fail(unknown[0], "unknown field")
    ca_file = r.text("caFile")
    if ca_file is not None and not Path(ca_file).is_file():
        raise r.fail("caFile", "file not found")
    common: dict[str, Any] = {
        "name": name,
        "timeout_seconds": r.number("timeoutSeconds", 10.0),
        "insecure_skip_verify": r.flag("insecureSkipVerify", False),
        "ca_file": ca_file,
    }
    return cls.from_config(r, common)


def parse_channels(data: object) -> dict[str, Channel]:
    """``{channels: {name: {...}}}`` → channels by name."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise NotifyConfigError("notify config: expected a mapping with a 'channels' key")
    unknown = sorted(set(data) - {"channels"})
    if unknown:
        raise NotifyConfigError(f"notify config: unknown top-level field {unknown[0]!r}")
    channels = data.get("channels") or {}
    if not isinstance(channels, Mapping):
        raise NotifyConfigError("notify config: 'channels' must map names to channel settings")
    result: dict[str, Channel] = {}
    for name, raw in channels.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", name):
            raise NotifyConfigError(f"notify channel {name!r}: name must be 1-63 letters, digits, '-', '_', '.'")
        result[name] = parse_channel(name, raw)
    return result


def load_channels(path: str | Path) -> dict[str, Channel]:
    """Read the channels file (YAML or JSON); an empty path means no channels."""
    if not str(path):
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotifyConfigError(f"notify config {str(path)!r}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The parser's message may quote a line of the file, and the file holds secrets.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise NotifyConfigError(f"notify config {str(path)!r}: not valid YAML/JSON{where}") from None
    return parse_channels(data)
