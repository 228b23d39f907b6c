"""OpenClaw Cron Operator: OpenClawCronJob resources scheduled into Pods."""

__version__ = "0.1.0"
