-- needs: customer_landing
-- Customers as landed: one per email.
select count(distinct email) as value from customer_landing
