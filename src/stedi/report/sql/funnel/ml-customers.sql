-- needs: machine_learning_curated
-- The ML table's customers (pseudonyms).
select count(distinct customer_key) as value from machine_learning_curated
