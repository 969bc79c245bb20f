"""Variants: the records and the builder that runs a chain of passes and caches the result."""
