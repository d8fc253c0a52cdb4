"""maa-server: a pure-Python asyncio IMAP/POP3/LMTP server, drop-in for Dovecot 2.3."""

__version__ = "0.1.0"
