-- needs: runs
-- Each table's rows after each command that recorded it (the latest runs), oldest first.
with

latest as (
    select run_id, min(started_at) as started_at
    from runs
    group by run_id
    order by started_at desc
    limit {limit}
)

select latest.run_id, latest.started_at, runs.command, runs.table_name, runs.action, runs.rows_out
from runs
inner join latest on runs.run_id = latest.run_id
where runs.table_name is not null and runs.rows_out is not null
order by latest.started_at, runs.table_name
