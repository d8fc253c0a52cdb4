"""Helpers shared by the test harnesses (real Dovecot, ports)."""
