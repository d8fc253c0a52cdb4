"""protocols/imap."""
