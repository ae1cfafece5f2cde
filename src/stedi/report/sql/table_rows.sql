-- needs: {table}
-- One table's rows (the report joins one such query per built table with union all).
select '{table}' as table_name, count(*) as rows from {table}
