"""Examples that tests and benchmarks import as modules: the labs (the Samba DC, the Graph
emulator and their sample data)."""
