-- needs: reconciliation
-- Where each source's records went, run by run (the latest runs), oldest first.
with

latest as (
    select run_id, max(run_at) as run_at
    from reconciliation
    group by run_id
    order by run_at desc
    limit {limit}
)

select
    reconciliation.run_id, reconciliation.run_at, reconciliation.source, reconciliation.read,
    reconciliation.kept, reconciliation.filtered, reconciliation.quarantined, reconciliation.duplicates,
    reconciliation.warnings, reconciliation.balanced
from reconciliation
inner join latest on reconciliation.run_id = latest.run_id
order by reconciliation.run_at, list_position(['customer', 'accelerometer', 'step_trainer'], reconciliation.source)
