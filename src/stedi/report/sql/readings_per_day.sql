-- needs: {table}
-- One table's readings per day (UTC) of their time; the report joins one query per table it shows.
select
    '{table}' as table_name,
    cast(epoch_ms({time_column}) as date) as day,
    count(*) as readings
from {table}
group by all
