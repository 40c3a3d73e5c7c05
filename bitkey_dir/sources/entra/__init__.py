"""Microsoft Entra ID over Microsoft Graph: bitlockerRecoveryKey (source.py is the source)."""
