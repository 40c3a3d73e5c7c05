"""What bitkey-dir writes and keeps: the access trail, the Key ID index, exports and key
packages. Used by the operations only: no source writes the trail, the index or an
export."""
