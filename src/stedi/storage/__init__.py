"""The lakehouse root: its files on a local disk or in S3 (files, s3), the writer lock on it (lock), and
what a writer sweeps up first (sweep)."""
