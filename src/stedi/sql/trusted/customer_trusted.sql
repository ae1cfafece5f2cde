-- customer_trusted: the current record of each customer who consented to research.
-- The current record of an email is the one with the latest lastUpdateDate. Ties (two records of one
-- email with the same lastUpdateDate) are broken deterministically: the record with the later
-- research consent date wins, then the greatest value of each remaining column in table order.
-- A customer whose current record has no research consent date is left out, even if an older
-- record had one: withdrawing consent takes effect.
with

customers as (
    select * from customer_landing
    where email is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by email
            order by
                lastUpdateDate desc nulls last,
                shareWithResearchAsOfDate desc nulls last,
                customerName desc nulls last,
                phone desc nulls last,
                birthDay desc nulls last,
                serialNumber desc nulls last,
                registrationDate desc nulls last,
                shareWithPublicAsOfDate desc nulls last,
                shareWithFriendsAsOfDate desc nulls last
        ) as version_rank
    from customers
)

select
    customerName,
    email,
    phone,
    birthDay,
    serialNumber,
    registrationDate,
    lastUpdateDate,
    shareWithResearchAsOfDate,
    shareWithPublicAsOfDate,
    shareWithFriendsAsOfDate
from ranked
where version_rank = 1
  and shareWithResearchAsOfDate is not null
