-- accelerometer_trusted: readings of customers in customer_trusted; exact duplicate readings once.
-- Duplicates are removed after the join, over the (fewer) consenting customers' readings.
with

readings as (
    select "user", "timestamp", x, y, z
    from accelerometer_landing
),

consenting as (
    select email from customer_trusted
)

select distinct
    readings."user",
    readings."timestamp",
    readings.x,
    readings.y,
    readings.z
from readings
inner join consenting on readings."user" = consenting.email
