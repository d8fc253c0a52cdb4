"""protocols/lmtp."""
