"""storage/index: our own rebuildable per-mailbox cache (never Dovecot's files)."""
