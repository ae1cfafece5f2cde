-- needs: {table}
-- A history table's rows after each run that added to it (the latest runs): the runs table does not
-- record the history tables themselves.
with

added as (
    select run_id, min({time_column}) as started_at, count(*) as rows_added
    from {table}
    group by run_id
),

grown as (
    select run_id, started_at, cast(sum(rows_added) over (order by started_at, run_id) as bigint) as rows_out
    from added
)

select run_id, started_at, null as command, '{table}' as table_name, 'appended' as action, rows_out
from grown
order by started_at desc
limit {limit}
