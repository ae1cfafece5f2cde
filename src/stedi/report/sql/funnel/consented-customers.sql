-- needs: customer_trusted
-- Customers whose current record consents to research.
select count(*) as value from customer_trusted
