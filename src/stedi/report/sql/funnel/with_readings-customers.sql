-- needs: customers_curated
-- Consenting customers with at least one accelerometer reading.
select count(*) as value from customers_curated
