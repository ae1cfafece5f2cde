"""The reference approach, as a Glue Studio user writes the five jobs, for comparison in benchmarks.

JSON read with schema inference, joins, each zone written as JSON and read back, one local session.
Usage: python bench/plain_pyspark.py LANDING_DIR OUT_DIR [--count]   (the master: $PLAIN_SPARK_MASTER, else
local[*]).   (LANDING_DIR holds customer/,
accelerometer/, step_trainer/ as `stedi generate` writes them). --count prints the row counts of the
five output tables afterwards (extra work, so not done when timing).
"""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession


def main(landing: str, out: str, count: bool = False) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (SparkSession.builder.master(os.environ.get("PLAIN_SPARK_MASTER", "local[*]")).appName("plain-glue-jobs")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    def zone(name: str) -> str:
        return os.path.join(out, name)

    # Job 1: customer_landing -> customer_trusted (consenting customers)
    customers = spark.read.json(os.path.join(landing, "customer"), recursiveFileLookup=True)
    customers.filter("shareWithResearchAsOfDate is not null").write.mode("overwrite").json(zone("customer_trusted"))

    # Job 2: accelerometer_landing x customer_trusted -> accelerometer_trusted
    accel = spark.read.json(os.path.join(landing, "accelerometer"), recursiveFileLookup=True)
    trusted = spark.read.json(zone("customer_trusted"))
    accel.join(trusted, accel["user"] == trusted["email"]).select(accel["*"]) \
        .write.mode("overwrite").json(zone("accelerometer_trusted"))

    # Job 3: customer_trusted x accelerometer_trusted -> customers_curated
    accel_trusted = spark.read.json(zone("accelerometer_trusted"))
    trusted.join(accel_trusted.select("user").distinct(), trusted["email"] == accel_trusted["user"]) \
        .drop("user").write.mode("overwrite").json(zone("customers_curated"))

    # Job 4: step_trainer_landing x customers_curated -> step_trainer_trusted
    steps = spark.read.json(os.path.join(landing, "step_trainer"), recursiveFileLookup=True)
    curated = spark.read.json(zone("customers_curated"))
    steps.join(curated.select("serialNumber").distinct(), "serialNumber") \
        .write.mode("overwrite").json(zone("step_trainer_trusted"))

    # Job 5: step_trainer_trusted x accelerometer_trusted (same owner, same time) -> machine_learning_curated
    step_trusted = spark.read.json(zone("step_trainer_trusted"))
    owners = curated.select("serialNumber", "email")
    accel_trusted = spark.read.json(zone("accelerometer_trusted"))
    step_trusted.join(owners, "serialNumber") \
        .join(accel_trusted, (accel_trusted["user"] == owners["email"])
              & (accel_trusted["timestamp"] == step_trusted["sensorReadingTime"])) \
        .select("sensorReadingTime", "serialNumber", "distanceFromObject", "x", "y", "z") \
        .write.mode("overwrite").json(zone("machine_learning_curated"))

    outputs = ("customer_trusted", "accelerometer_trusted", "customers_curated", "step_trainer_trusted",
               "machine_learning_curated")
    for name in outputs if count else ():
        print(f"{name}\t{spark.read.json(zone(name)).count()}")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--count" in sys.argv[3:])
