"""What a run stands on: the config, credentials and the keyring, the person at the other
end (interaction), age encryption, and the file primitives (bounded reads, private files
replaced atomically)."""
