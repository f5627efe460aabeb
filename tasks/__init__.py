"""One module per stage: pure functions over Arrow tables, plus thin Prefect task wrappers in flows/."""
