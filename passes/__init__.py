"""Model transformations: each module is one pass, file in, file out."""
