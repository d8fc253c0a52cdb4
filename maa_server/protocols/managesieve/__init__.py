"""ManageSieve (RFC 5804): upload and manage Sieve scripts."""
