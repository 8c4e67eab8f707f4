"""The Spark baseline of ratio (d): fct_sessions and fct_funnel_daily with pyspark, local[*].

Runs in the benchmark's own venv (.venv-bench, bench/requirements.txt), never the project's:
    .venv-bench/bin/python bench/spark_marts.py 'DIR/events/*.parquet' --out OUT

Reads the same raw files as the dbt build, writes the two marts as Parquet under OUT
(forcing the full computation) and prints one JSON line: startup_s (SparkSession start),
compute_s (read, validate, deduplicate, sessionise, aggregate, write both marts), the
Spark version and the configuration used.

The rules follow the dbt models, with these simplifications (none changes a row count on
generated data):
- validation keeps the rows staging would keep, except the load-time rule "event time more
  than 24 h in the future", which is checked against the wall clock here; csv parse errors
  are dropped instead of quarantined (generated files have none);
- exact duplicate rows (all nine raw values equal) collapse into one, like staging;
- sessions: one user's events under one raw session id, split where the gap to the
  previous event exceeds session_inactivity_minutes (30), gaps in whole seconds as
  DuckDB's date_diff('second'); ties in event time are ordered by time only (dbt also
  orders by event_id), which can only change first/last category code of a session;
- session_id is md5 of user, raw session and number (dbt uses its surrogate_key macro).
"""
from __future__ import annotations

import argparse
import json
import time

ACCEPTED_EVENT_TYPES = ["view", "cart", "purchase", "remove_from_cart"]
RAW_COLUMNS = ["event_time", "event_type", "product_id", "category_id", "category_code",
               "brand", "price", "user_id", "user_session"]


def read_raw(spark, glob: str):
    """The raw events with the parquet types; csv(.gz) is read with explicit types."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import (DoubleType, LongType, StringType, StructField,
                                   StructType)

    if glob.endswith(".parquet"):
        return spark.read.parquet(glob).select(*RAW_COLUMNS)
    schema = StructType([
        StructField("event_time", StringType()), StructField("event_type", StringType()),
        StructField("product_id", LongType()), StructField("category_id", LongType()),
        StructField("category_code", StringType()), StructField("brand", StringType()),
        StructField("price", DoubleType()), StructField("user_id", LongType()),
        StructField("user_session", StringType()),
    ])
    raw = spark.read.csv(glob, header=True, schema=schema, mode="DROPMALFORMED")
    return raw.withColumn(
        "event_time", F.to_timestamp("event_time", "yyyy-MM-dd HH:mm:ss 'UTC'"))


def build_marts(raw, inactivity_minutes: int = 30, max_session_hours: int = 24):
    """(sessionised events, fct_sessions, fct_funnel_daily) as lazy DataFrames."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    valid = raw.where(
        F.col("event_time").isNotNull()
        & (F.col("event_time") >= F.lit("2000-01-01").cast("timestamp"))
        & (F.col("event_time")
           <= F.current_timestamp() + F.expr("interval 24 hours"))
        & F.col("event_type").isin(ACCEPTED_EVENT_TYPES)
        & F.col("product_id").isNotNull()
        & F.col("user_id").isNotNull()
        & F.col("user_session").isNotNull()
        & F.col("price").isNotNull()
        & (F.col("price") >= 0)
        & (F.col("price") <= 100000)
    )
    events = (
        valid.dropDuplicates(RAW_COLUMNS)
        .select(
            F.col("event_time").alias("event_at"),
            F.to_date("event_time").alias("event_date"),
            "event_type", "product_id", "category_code",
            F.split("category_code", r"\.").getItem(0).alias("category_l1"),
            "brand",
            F.col("price").cast("decimal(12, 2)").alias("price"),
            "user_id",
            F.col("user_session").alias("raw_session_id"),
        )
    )
    in_raw_session = Window.partitionBy("user_id", "raw_session_id").orderBy("event_at")
    gap = F.unix_timestamp("event_at") - F.unix_timestamp(F.lag("event_at").over(in_raw_session))
    flagged = (
        events
        .withColumn("event_number_in_raw_session", F.row_number().over(in_raw_session))
        .withColumn("is_session_start",
                    F.coalesce(gap > inactivity_minutes * 60, F.lit(True)))
    )
    running = in_raw_session.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    sessionized = (
        flagged
        .withColumn("session_number",
                    F.sum(F.col("is_session_start").cast("int")).over(running))
        .withColumn("session_id", F.md5(F.concat_ws(
            "|", "user_id", "raw_session_id", "session_number")))
    )

    def when_type(kind: str, value):
        return F.when(F.col("event_type") == kind, value)

    coded_number = F.when(F.col("category_code").isNotNull(),
                          F.col("event_number_in_raw_session"))
    aggregated = sessionized.groupBy("session_id").agg(
        F.first("user_id").alias("user_id"),
        F.first("raw_session_id").alias("raw_session_id"),
        F.first("session_number").alias("session_number"),
        F.min("event_at").alias("session_started_at"),
        F.max("event_at").alias("session_ended_at"),
        F.count(F.lit(1)).alias("events"),
        F.count(when_type("view", 1)).alias("views"),
        F.count(when_type("cart", 1)).alias("carts"),
        F.count(when_type("purchase", 1)).alias("purchases"),
        F.countDistinct(when_type("view", F.col("product_id")))
        .alias("distinct_products_viewed"),
        F.coalesce(F.sum(when_type("purchase", F.col("price"))), F.lit(0))
        .alias("revenue"),
        F.min_by("category_code", coded_number).alias("first_category_code"),
        F.max_by("category_code", coded_number).alias("last_category_code"),
        F.min(when_type("cart", F.col("event_at"))).alias("first_cart_at"),
        F.min(when_type("purchase", F.col("event_at"))).alias("first_purchase_at"),
    )

    def seconds(start: str, end: str):
        return F.unix_timestamp(end) - F.unix_timestamp(start)

    sessions = aggregated.select(
        "session_id", "user_id", "raw_session_id",
        F.col("session_number").cast("int").alias("session_number"),
        F.to_date("session_started_at").alias("session_date"),
        "session_started_at", "session_ended_at",
        seconds("session_started_at", "session_ended_at").alias("duration_seconds"),
        *[F.col(c).cast("int").alias(c) for c in
          ("events", "views", "carts", "purchases", "distinct_products_viewed")],
        F.col("revenue").cast("decimal(18, 2)").alias("revenue"),
        "first_category_code", "last_category_code",
        (F.col("carts") > 0).alias("has_cart"),
        (F.col("purchases") > 0).alias("has_purchase"),
        F.when(F.col("carts") > 0, F.col("purchases") == 0).alias("is_cart_abandoned"),
        seconds("session_started_at", "first_cart_at").alias("seconds_to_first_cart"),
        seconds("session_started_at", "first_purchase_at")
        .alias("seconds_to_first_purchase"),
        (F.col("events") == 1).alias("is_bounce"),
        (F.count(F.lit(1)).over(Window.partitionBy("raw_session_id")) > 1)
        .alias("is_resplit"),
        (seconds("session_started_at", "session_ended_at") > max_session_hours * 3600)
        .alias("is_long_session"),
    )

    steps = (
        sessionized
        .select("event_date",
                F.coalesce("category_l1", F.lit("unknown")).alias("category_l1"),
                F.coalesce("brand", F.lit("unknown")).alias("brand"),
                "session_id", "event_type")
        .groupBy("event_date", "category_l1", "brand", "session_id")
        .agg(F.count(when_type("view", 1)).alias("views"),
             F.count(when_type("cart", 1)).alias("carts"),
             F.count(when_type("purchase", 1)).alias("purchases"))
    )
    daily = steps.groupBy("event_date", "category_l1", "brand").agg(
        F.count(F.lit(1)).alias("sessions"),
        F.count(F.when(F.col("views") > 0, 1)).alias("sessions_with_view"),
        F.count(F.when(F.col("carts") > 0, 1)).alias("sessions_with_cart"),
        F.count(F.when((F.col("carts") > 0) | (F.col("purchases") > 0), 1))
        .alias("sessions_reaching_cart"),
        F.count(F.when(F.col("purchases") > 0, 1)).alias("sessions_with_purchase"),
        F.sum("views").alias("views"),
        F.sum("carts").alias("carts"),
        F.sum("purchases").alias("purchases"),
    )
    funnel = daily.select(
        "event_date", "category_l1", "brand",
        *[F.col(c).cast("int").alias(c) for c in
          ("sessions", "sessions_with_view", "sessions_with_cart", "sessions_reaching_cart",
           "sessions_with_purchase", "views", "carts", "purchases")],
        (F.col("sessions_reaching_cart") / F.col("sessions"))
        .alias("session_view_to_cart_rate"),
        (F.col("sessions_with_purchase")
         / F.when(F.col("sessions_reaching_cart") != 0, F.col("sessions_reaching_cart")))
        .alias("session_cart_to_purchase_rate"),
        (F.col("sessions_with_purchase") / F.col("sessions")).alias("session_conversion_rate"),
    )
    return sessionized, sessions, funnel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("glob", help="raw files, as REES46_EVENTS")
    parser.add_argument("--out", required=True, help="output folder (overwritten)")
    parser.add_argument("--driver-memory", default="8g",
                        help="JVM heap of the local driver (the DuckDB memory_limit's twin)")
    parser.add_argument("--shuffle-partitions", type=int, default=16,
                        help="spark.sql.shuffle.partitions (Spark's default of 200 costs "
                             "minutes of task overhead on 2 cores; AQE may coalesce further)")
    parser.add_argument("--inactivity-minutes", type=int, default=30)
    args = parser.parse_args()

    from pyspark import StorageLevel, __version__
    from pyspark.sql import SparkSession

    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[*]").appName("rees46-bench-marts")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()

    sessionized, sessions, funnel = build_marts(read_raw(spark, args.glob),
                                                args.inactivity_minutes)
    # Both marts read the sessionised events: keep them once, as a Spark user would.
    sessionized.persist(StorageLevel.MEMORY_AND_DISK)
    sessions.write.mode("overwrite").parquet(f"{args.out}/fct_sessions")
    funnel.write.mode("overwrite").parquet(f"{args.out}/fct_funnel_daily")
    computed = time.perf_counter()
    sessionized.unpersist()

    print(json.dumps({
        "startup_s": started - start,
        "compute_s": computed - started,
        "spark_version": __version__,
        "master": spark.sparkContext.master,
        "default_parallelism": spark.sparkContext.defaultParallelism,
        "driver_memory": args.driver_memory,
        "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "adaptive": spark.conf.get("spark.sql.adaptive.enabled"),
    }))
    spark.stop()


if __name__ == "__main__":
    main()
