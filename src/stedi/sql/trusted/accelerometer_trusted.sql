-- accelerometer_trusted: readings of customers in customer_trusted; exact duplicate readings once.
with

readings as (
    select distinct "user", "timestamp", x, y, z
    from accelerometer_landing
),

consenting as (
    select email from customer_trusted
)

select
    readings."user",
    readings."timestamp",
    readings.x,
    readings.y,
    readings.z
from readings
inner join consenting on readings."user" = consenting.email
