"""Session fixtures for the gateway tier: a stand-in model and a real OpenClaw gateway on loopback.

The fixtures are shared with the image tier (tests/support/gateway_fixtures.py); the tier fails
(never skips) when the gateway cannot be installed or started, unless OPENCLAW_GATEWAY_TESTS=skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))  # the tests import the harness (openclaw_gateway) by name

from support.gateway_fixtures import openclaw, stub_model  # noqa: E402

__all__ = ["openclaw", "stub_model"]  # session fixtures
