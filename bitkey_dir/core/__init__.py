"""Pure values and rules: Key IDs, passwords, keys, queries, errors, the record format,
escaping for display, coverage figures, rotation steps. No I/O, and nothing from the
layers above."""
