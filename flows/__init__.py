"""Prefect flows: the sleep cycle, ingest, eval, schedule helpers and the CLI entry point."""
