"""The package's two errors: a bad channels file, and one failed delivery attempt."""

from __future__ import annotations


class NotifyConfigError(ValueError):
    """The channels file is unusable; the message names the channel and the field."""


class DeliveryError(Exception):
    """One delivery attempt failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
