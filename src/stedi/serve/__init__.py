"""`stedi serve`: the report live on a local port, with a read-only SQL box (see server.py)."""
