"""Splink on Spark (local mode) linking the clear-text benchmark records: the peer of
`benchmarks/spark_splink.py`. Runs in the peer's own environment (splink 5, pyspark), never in
Accord's: Accord does not depend on Splink.

    /tmp/splink-peers/bin/python benchmarks/splink_spark_peer.py DIR --master local[2]
        --driver-memory 4g

Reads DIR/a_clear.parquet and DIR/b_clear.parquet (columns id, given, family, dob, sex,
citizenship; generated people, never real ones), links A to B as Splink's documentation sets
such a linkage up (name, date-of-birth and exact comparisons, blocking rules for prediction,
u from random pairs, m by EM on two blocking rules, predict, one-to-one by single best links),
and writes DIR/splink.json: wall and CPU seconds (this process and its JVM and Python workers),
Spark's peak executor memory and shuffle, and the linked pairs (DIR/splink_pairs/, Parquet).
Splink sees the names in clear: it is the non-private baseline, not a like-for-like privacy
setting; what is compared is the work of linking the same records on the same engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import tree_cpu


def _rest(ui: str, path: str) -> Any:
    with urllib.request.urlopen(f"{ui}/api/v1/{path}", timeout=30) as r:
        return json.load(r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--partitions", type=int, default=16)
    args = ap.parse_args()
    d = Path(args.dir)

    import pyspark.sql.functions as F
    import splink.comparison_library as cl
    from pyspark.sql import SparkSession
    from splink import Linker, SettingsCreator, SparkAPI, block_on
    from splink.internals.spark.jar_location import similarity_jar_location

    t0 = time.perf_counter()
    c0 = time.process_time()
    spark = (SparkSession.builder.master(args.master).appName("splink-peer")
             .config("spark.driver.memory", args.driver_memory)
             .config("spark.jars", similarity_jar_location())
             .config("spark.sql.shuffle.partitions", str(args.partitions))
             .config("spark.default.parallelism", str(args.partitions))
             .config("spark.executor.processTreeMetrics.enabled", "true")
             .config("spark.local.dir", str(d / "splink-local"))
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(str(d / "splink-checkpoints"))

    def side(name: str) -> Any:
        df = spark.read.parquet(str(d / f"{name}_clear.parquet"))
        # Partial dates ("1980", "") stay in `dob` for blocking; the date comparison gets full
        # dates only (Spark 4's ANSI mode fails on an unparsable date instead of giving null).
        return (df.withColumnRenamed("id", "unique_id")
                .withColumn("dob", F.when(F.col("dob") == "", None).otherwise(F.col("dob")))
                .withColumn("dob_full", F.when(F.length("dob") == 10, F.col("dob")))
                .withColumn("yob", F.substring("dob", 1, 4)))

    a, b = side("a"), side("b")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            # Term-frequency adjustments on names, as Splink's documentation advises for them.
            cl.NameComparison("given").configure(term_frequency_adjustments=True),
            cl.NameComparison("family").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob_full", input_is_string=True),
            cl.ExactMatch("yob"),
            cl.ExactMatch("sex"),
            cl.ExactMatch("citizenship"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("dob"),
            block_on("given", "family", "sex"),
            block_on("family", "yob"),
            block_on("given", "yob"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    db = SparkAPI(spark_session=spark, num_partitions_on_repartition=args.partitions)
    linker = Linker([db.register(a, dataset_display_name="a"),
                     db.register(b, dataset_display_name="b")], settings)
    steps: dict[str, float] = {}

    def note(step: str) -> None:
        steps[step] = round(time.perf_counter() - t0, 1)
        print(f"  [splink] {steps[step]:7.1f} s  {step}", flush=True)

    linker.training.estimate_probability_two_random_records_match(
        [block_on("given", "family", "dob")], recall=0.6)
    note("lambda")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7)
    note("u")
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given", "family"))
    note("em")
    scored = linker.inference.predict(threshold_match_probability=0.01)
    candidates = scored.as_spark_dataframe().count()
    note("predict")
    clusters = linker.clustering.cluster_using_single_best_links(
        scored, duplicate_free_datasets=["a", "b"], threshold_match_probability=0.5)
    c = clusters.as_spark_dataframe()
    pairs = (c.groupBy("cluster_id")
             .agg(F.max(F.when(F.col("source_dataset") == "a", F.col("unique_id"))).alias("a"),
                  F.max(F.when(F.col("source_dataset") == "b", F.col("unique_id"))).alias("b"))
             .where(F.col("a").isNotNull() & F.col("b").isNotNull())
             .select("a", "b"))
    pairs.coalesce(1).write.mode("overwrite").parquet(str(d / "splink_pairs"))
    note("one-to-one")
    ui = spark.sparkContext.uiWebUrl
    app = _rest(ui, "applications")[0]["id"]
    metrics = {"stages": _rest(ui, f"applications/{app}/stages"),
               "executors": _rest(ui, f"applications/{app}/allexecutors")}
    cpu_tree = tree_cpu()
    spark.stop()
    (d / "splink.json").write_text(json.dumps({
        "wall": time.perf_counter() - t0, "cpu_driver": time.process_time() - c0,
        "cpu_tree": cpu_tree, "candidates_p01": candidates, "steps": steps, **metrics},
        default=str))


if __name__ == "__main__":
    main()
