"""The lab: a Samba AD DC with sample BitLocker keys (samba_dc.py), started by start.py."""
