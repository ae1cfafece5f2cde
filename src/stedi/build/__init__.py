"""The build stage: `stedi run` (runner), each derived table from its .sql, and the reconciliation of every
landed record."""
