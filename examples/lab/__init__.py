"""The lab: a Samba AD DC with sample BitLocker keys (samba_dc.py), started by start.py, and an
emulator of Microsoft Graph and the identity platform (graph_emulator/) that the tests and the
benchmarks run."""
