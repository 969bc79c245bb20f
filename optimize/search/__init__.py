"""Searching: the chain search, the accuracy fallback and the pruning sweep."""
