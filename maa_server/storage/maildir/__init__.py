"""storage/maildir."""
