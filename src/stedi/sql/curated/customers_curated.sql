-- customers_curated: customer_trusted customers with at least one accelerometer_trusted reading.
-- One row per customer (customer_trusted already has one per email). Holds identities: internal use.
with

customers as (
    select * from customer_trusted
),

readers as (
    select distinct "user" from accelerometer_trusted
)

select customers.*
from customers
where customers.email in (select "user" from readers)
