"""Great Expectations suites, one per stage boundary, and the runner that applies them."""
