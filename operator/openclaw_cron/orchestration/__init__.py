"""Orchestration rules (DESIGN §9): dependencies, run conditions, backfill, pause, escalation.

Every module but `inputs` is pure; `inputs.gather_inputs` does the reading (other jobs'
status, ConfigMaps, Secrets, HTTP checks) before a reconcile pass and hands the result in.
"""

from .inputs import JobSummary, OrchestrationInputs, Reader, RunSummary, dependents, gather_inputs

__all__ = ["JobSummary", "OrchestrationInputs", "Reader", "RunSummary", "dependents", "gather_inputs"]
