"""storage/message."""
