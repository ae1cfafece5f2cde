"""The landing stage: landed files as delivered (zone and manifest), read and validated into the landing
and quarantine tables (reader, exact parser, quality rules in checks/)."""
