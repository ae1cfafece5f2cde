-- needs: machine_learning_curated
-- One pseudonymous customer's paired readings over time: the customer with the most pairs (ties: the
-- least pseudonym), accelerometer magnitude and the step trainer's distance, at most {limit} points.
with

chosen as (
    select customer_key
    from machine_learning_curated
    group by customer_key
    order by count(*) desc, customer_key
    limit 1
),

readings as (
    select
        sensorReadingTime,
        avg(sqrt(x * x + y * y + z * z)) as magnitude,
        avg(distanceFromObject) as distance
    from machine_learning_curated
    where customer_key = (select customer_key from chosen)
    group by sensorReadingTime
)

select
    (select customer_key from chosen) as customer_key,
    sensorReadingTime,
    magnitude,
    distance
from readings
order by sensorReadingTime
limit {limit}
