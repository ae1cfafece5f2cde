-- needs: {table}
-- A few rows of one table, masked before they are shown (stedi.report.mask).
select * from {table} limit {limit}
