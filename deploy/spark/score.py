#!/usr/bin/env python3
"""Score a folder of CSV, Parquet or Zeek logs on Apache Spark with netsec's own scorer.

Each Spark partition is streamed through one `predict - - --exact` process (CSV on its
standard input, CSV on its standard output) by `mapInArrow`: the scores are the ones
`predict` gives on one machine, bit for bit; Spark only partitions the data, runs the
processes where the data is, and writes the verdicts as Parquet.

    python deploy/spark/score.py --input logs/ --output verdicts/ \\
        --model models/production/zeek_ctu50.json --predict target/release/predict

The same job runs on a cluster with `--master spark://host:7077` (or under spark-submit,
`--master yarn`, `k8s://...`): the `predict` binary and the bundle are shipped to every
executor by `SparkContext.addFile` (spark-submit's `--files`), so executors need neither
Rust nor DVC, only the same CPU architecture and a glibc as new as the build machine's.

Output: Parquet part files (one per partition, or folders per value of --partition-by)
holding the input's columns as text (for a Zeek log: the connection's ts, uid and
addresses), then threat_score (double) and prediction. A summary line (JSON) goes to
stdout; Spark's own log goes to stderr.
"""

import argparse
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FORMATS = ("auto", "csv", "parquet", "zeek")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Score a folder of CSV, Parquet or Zeek logs on Spark through netsec's predict; write Parquet.",
        epilog="Example: python deploy/spark/score.py --input data/ --output verdicts/ "
        "--model models/production/unsw_nb15.json --master local[2]",
    )
    p.add_argument("--input", required=True, help="a file or a folder of files (all of one format)")
    p.add_argument("--output", required=True, help="the Parquet folder to write")
    p.add_argument("--model", required=True, help="the model bundle (JSON), e.g. models/production/phishing.json")
    p.add_argument(
        "--predict",
        default=os.environ.get("NETSEC_PREDICT", "target/release/predict"),
        help="netsec's predict binary (default: $NETSEC_PREDICT or target/release/predict)",
    )
    p.add_argument("--format", choices=FORMATS, default="auto", help="input format (default: from the file names)")
    p.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[2]"), help="Spark master (default local[2])")
    p.add_argument("--partitions", type=int, default=0, help="repartition the input into N partitions first (0: as read)")
    p.add_argument("--partition-by", default=None, help="write one Parquet folder per value of this output column")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    p.add_argument("--batch-rows", type=int, default=65536, help="rows per Arrow batch handed to predict")
    return p.parse_args(argv)


def fail(message):
    print(f"score.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def input_files(root):
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        fail(f"{root}: no such file or folder")
    files = sorted(f for f in root.rglob("*") if f.is_file() and not f.name.startswith((".", "_")))
    if not files:
        fail(f"{root}: holds no input files")
    return files


def open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "rt", encoding="utf-8", errors="replace")


def guess_format(files):
    kinds = set()
    for f in files:
        name = f.name.lower().removesuffix(".gz")
        if name.endswith((".parquet", ".pq")):
            kinds.add("parquet")
            continue
        with open_text(f) as t:
            first = t.readline()
        if first.startswith("#separator") or (name.endswith(".log") and first.lstrip().startswith("{")):
            kinds.add("zeek")
        elif name.endswith((".csv", ".txt")):
            kinds.add("csv")
        else:
            fail(f"{f}: cannot tell its format (csv, parquet or zeek): pass --format")
    if len(kinds) != 1:
        fail(f"the input mixes formats ({', '.join(sorted(kinds))}): score one format per run")
    return kinds.pop()


def zeek_header(files):
    """The `#` lines of the Zeek TSV logs (the same in every file), or "" for Zeek JSON."""
    header = None
    for f in files:
        lines = []
        with open_text(f) as t:
            for line in t:
                if not line.startswith("#"):
                    break
                if not line.startswith(("#open", "#close")):
                    lines.append(line)
        text = "".join(lines)
        if header is None:
            header, first = text, f
        elif text != header:
            fail(f"{f}: its Zeek header (#fields, #types) differs from {first}'s: score them in separate runs")
    return header


def predict_command(predict, model):
    """predict as a filter: CSV on stdin, CSV verdicts with every bit of a score on stdout."""
    return [predict, "-", "-", "--exact", "--model", model, "--quiet"]


def executable(path):
    """A copy of `path` with its execute bit set when the shipped file lost it."""
    if os.access(path, os.X_OK):
        return path
    copy = os.path.join(tempfile.mkdtemp(prefix="netsec-predict-"), os.path.basename(path))
    shutil.copyfile(path, copy)
    os.chmod(copy, stat.S_IRWXU)
    return copy


class Predict:
    """One `predict - - --exact` process: CSV text in, CSV verdicts out, read as Arrow."""

    def __init__(self, predict, model, output_schema):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.proc = subprocess.Popen(
            predict_command(predict, model),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.errors = []
        self.stderr = threading.Thread(target=self._drain_stderr, daemon=True)
        self.stderr.start()
        self.schema = output_schema
        types = {f.name: (pa.float64() if f.name == "threat_score" else pa.string()) for f in output_schema}
        self.read_options = pacsv.ReadOptions(block_size=1 << 22)
        self.convert = pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
        )

    def _drain_stderr(self):
        self.errors.append(self.proc.stderr.read().decode("utf-8", "replace"))

    def feed(self, write):
        """Write the input on a thread (so the output is read meanwhile), then close stdin."""

        def run():
            try:
                write(self.proc.stdin)
            except BrokenPipeError:
                pass  # predict stopped early: its exit code and message tell why
            finally:
                try:
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def verdicts(self):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        try:
            reader = pacsv.open_csv(self.proc.stdout, read_options=self.read_options, convert_options=self.convert)
            for batch in reader:
                yield pa.RecordBatch.from_arrays([batch.column(f.name) for f in self.schema], schema=self.schema)
        except pa.ArrowInvalid as e:
            if self.proc.wait() == 0:
                raise RuntimeError(f"cannot read predict's output: {e}") from e
        code = self.proc.wait()
        self.stderr.join()
        if code != 0:
            raise RuntimeError(f"predict exited with {code}: {''.join(self.errors).strip()}")


def score_partition(batches, predict, model, out_schema, fmt, header):
    """mapInArrow's function: every batch of one partition through one predict process."""
    import pyarrow.csv as pacsv

    batches = iter(batches)
    first = next(batches, None)
    while first is not None and first.num_rows == 0:
        first = next(batches, None)
    if first is None:
        return
    proc = Predict(executable(predict), model, out_schema)

    def write_table(stdin):
        # CSV with a header, nulls as empty cells: predict parses the numbers itself.
        opts = pacsv.WriteOptions(include_header=True, quoting_style="needed")
        writer = pacsv.CSVWriter(stdin, first.schema, write_options=opts)
        for b in [first, *batches]:
            writer.write_batch(b)
        writer.close()

    def write_lines(stdin):
        stdin.write(header.encode())
        for b in [first, *batches]:
            lines = b.column(0).to_pylist()
            stdin.write(("\n".join(v for v in lines if v and not v.startswith("#")) + "\n").encode())

    feeder = proc.feed(write_lines if fmt == "zeek" else write_table)
    yield from proc.verdicts()
    feeder.join()


def sample_columns(predict, model, sample_csv):
    """The columns predict writes for this model and input, from a few rows scored here."""
    out = subprocess.run(predict_command(predict, model), input=sample_csv, capture_output=True)
    if out.returncode != 0:
        fail(f"predict refused the first rows of the input: {out.stderr.decode('utf-8', 'replace').strip()}")
    return out.stdout.decode("utf-8").splitlines()[0].split(",")


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    for what, path in (("--predict", args.predict), ("--model", args.model)):
        if not os.path.isfile(path):
            fail(f"{what} {path}: no such file")
    if os.path.exists(args.output) and not args.overwrite:
        fail(f"{args.output} exists: pass --overwrite to replace it")
    files = input_files(args.input)
    fmt = guess_format(files) if args.format == "auto" else args.format
    header = zeek_header(files) if fmt == "zeek" else ""
    # The Python workers must be this interpreter: it has pyarrow.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    import pyarrow as pa
    import pyarrow.csv as pacsv
    from pyspark import SparkFiles
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(args.master)
        .appName("netsec-score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_rows))
        .config("spark.sql.parquet.compression.codec", "zstd")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    # Ship the scorer and the bundle to every executor.
    spark.sparkContext.addFile(os.path.abspath(args.predict))
    spark.sparkContext.addFile(os.path.abspath(args.model))
    predict_name, model_name = os.path.basename(args.predict), os.path.basename(args.model)

    paths = [str(f) for f in files]
    if fmt == "csv":
        # Every cell as text, quoted as RFC 4180 says: predict reads the numbers itself.
        df = spark.read.options(header=True, inferSchema=False, escape='"', mode="FAILFAST").csv(paths)
    elif fmt == "parquet":
        df = spark.read.parquet(*paths)
    else:
        df = spark.read.text(paths)
    if args.partitions > 0:
        df = df.repartition(args.partitions)

    # The output's columns, from the first rows scored on the driver.
    if fmt == "zeek":
        sample = header + "".join(r.value + "\n" for r in df.filter(~df.value.startswith("#")).limit(10).collect())
        sample = sample.encode()
    else:
        sink = pa.BufferOutputStream()
        first = df.limit(10).toArrow()
        pacsv.write_csv(first, sink, write_options=pacsv.WriteOptions(quoting_style="needed"))
        sample = sink.getvalue().to_pybytes()
    columns = sample_columns(args.predict, args.model, sample)
    out_schema = pa.schema([(c, pa.float64() if c == "threat_score" else pa.string()) for c in columns])
    if args.partition_by and args.partition_by not in columns:
        fail(f"--partition-by {args.partition_by}: not an output column ({', '.join(columns)})")
    spark_schema = ", ".join(f"`{c}` {'double' if c == 'threat_score' else 'string'}" for c in columns)

    def score(batches):
        return score_partition(
            batches, SparkFiles.get(predict_name), SparkFiles.get(model_name), out_schema, fmt, header
        )

    out = df.mapInArrow(score, spark_schema)
    writer = out.write.mode("overwrite" if args.overwrite else "errorifexists")
    if args.partition_by:
        writer = writer.partitionBy(args.partition_by)
    writer.parquet(args.output)
    rows = spark.read.parquet(args.output).count()
    partitions = df.rdd.getNumPartitions()
    spark.stop()
    seconds = time.monotonic() - started
    summary = {
        "rows": rows,
        "partitions": partitions,
        "master": args.master,
        "format": fmt,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / max(seconds, 1e-9)),
        "output": args.output,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
