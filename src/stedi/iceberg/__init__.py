"""Apache Iceberg through pyiceberg: the catalog of stedi's tables and their commits (catalog), the
embedded SQLite catalog (sqlite), expiry and clean-up (maintenance), compaction (optimize), and
re-registering a moved lakehouse (attach)."""
