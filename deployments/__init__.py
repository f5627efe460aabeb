"""Nightly deployment definitions: `slowwave schedule` (serve) and prefect.yaml (work pool + worker)."""
