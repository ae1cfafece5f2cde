"""Privacy by design: the pseudonym key and keyed hashes (keys), the PII guard (guard), the right to
erasure (erasure) and keeping erased people out (suppression)."""
