"""Saved key files, manage-bde output and exports (source.py is the source)."""
