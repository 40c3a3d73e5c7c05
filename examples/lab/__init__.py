"""The labs, for trying bitkey-dir and for its tests and benchmarks: a Samba AD DC (samba_dc.py,
with the sample in ad.py) and an emulator of Entra ID (graph_emulator/, with the sample tenant
in entra.py), started by start.py."""
