"""Active Directory over LDAP: recovery objects below computers (source.py is the source)."""
