-- action: quarantine
-- reason: an acceleration above 100 in absolute value (a phone measures at most 16 g, about 157 m/s2; STEDI sends g)
select * from accelerometer
where abs(x) > 100 or abs(y) > 100 or abs(z) > 100
