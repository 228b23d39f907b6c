"""The run archive: every finished attempt's full record, kept for weeks and queryable (DESIGN §8)."""
