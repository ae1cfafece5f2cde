"""States of the lakehouse: every table as one command left it, to read (time travel), name (tags), export
and restore (rollback). See docs/history.md."""
