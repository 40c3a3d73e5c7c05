"""Examples that tests and benchmarks import as modules (the lab's Samba DC)."""
