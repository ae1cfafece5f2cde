-- needs: {table}
-- One source's quarantined records by reason, with a few examples of each (masked before shown).
with

ranked as (
    select
        reason, file, position, message, raw,
        count(*) over (partition by reason) as records,
        row_number() over (partition by reason order by file, position nulls last, raw) as example
    from {table}
)

select '{source}' as source, reason, records, file, position, message, raw
from ranked
where example <= {examples}
order by records desc, reason, example
