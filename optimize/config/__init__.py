"""Configuration: the recipe, its file form, the built-in chains and the dry-run plan."""
