-- needs: quality_checks
-- Each quality rule's count of rows, run by run (the latest runs), oldest first.
with

latest as (
    select run_id, max(run_at) as run_at
    from quality_checks
    group by run_id
    order by run_at desc
    limit {limit}
)

select quality_checks.run_id, quality_checks.run_at, quality_checks.source, quality_checks.rule,
       quality_checks.action, cast(sum(quality_checks.rows) as bigint) as rows
from quality_checks
inner join latest on quality_checks.run_id = latest.run_id
group by all
order by quality_checks.run_at, quality_checks.source, quality_checks.rule
