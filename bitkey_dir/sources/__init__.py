"""Sources of recovery keys and the registry that finds them by type name."""
