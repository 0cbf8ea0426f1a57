# `make run`: set up what is missing, build, pull the data from the offline remote, run the pipeline.
# `make test`: the whole test suite (what CI runs, through .ci/run).
SHELL := /bin/bash
VENV  ?= .venv
DVC   := $(VENV)/bin/dvc
# MLflow server for the tracking test, in its own venv.
MLFLOW := .venv-mlflow/bin/mlflow
# The shap package, for the explanation test (tests/shap/check.py), in its own venv.
SHAP := .venv-shap/bin/python
# PySpark (and pyarrow) for the Spark batch-scoring test (deploy/spark/score.py), in its own venv;
# Spark runs on the machine's Java 17 runtime.
SPARK := .venv-spark/bin/python
CARGO ?= cargo
# One cargo profile (release) for the pipeline and the tests: a clean polars build is ~10 minutes.
CARGO_FLAGS ?= --release --locked
# .ci/run adds --no-fail-fast: every test binary runs even after one fails.
CARGO_TEST_FLAGS ?=
export DVC_NO_ANALYTICS := 1

.PHONY: run test build venv java chromium prometheus postgresql nats-server clean bench bench-train bench-serve bench-build bench-zeek bench-urls bench-stream bench-scale bench-peers
run: build $(DVC)
	$(DVC) pull data.dvc
	$(DVC) repro
	@echo
	@echo "Done. Metrics are in metrics/ (eval.json: test scores; train.json: cross-validation)."
	@echo "  $(DVC) metrics show      # all metrics"
	@echo "  $(DVC) exp show --no-pager"
	@echo "Model bundle: models/model.json   ROC points: plots/roc.json   reports: reports/"

# The URL extractor test reads data/urls-hannousse (under data.dvc): pulled from the offline remote.
test: build $(DVC) $(MLFLOW) $(SHAP) $(SPARK) java chromium prometheus postgresql nats-server
	$(DVC) pull -q data.dvc
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) test $(CARGO_FLAGS) $(CARGO_TEST_FLAGS)

# $(call debian,CHECK,PACKAGES,WHY): when CHECK fails, install Debian's PACKAGES (as root), or
# stop and say WHY and how.
debian = @$(1) || { \
  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
  else echo "$(3): sudo apt-get install -y $(2)" >&2; exit 1; fi; }

# Browser tests (dvc plots, the upload page) use Debian's headless Chromium and ChromeDriver.
chromium:
	$(call debian,command -v chromium >/dev/null && command -v chromedriver >/dev/null,chromium chromium-driver,make test needs Debian's chromium and chromium-driver)

# The drift test scrapes the server with Debian's Prometheus (and checks deploy/prometheus with promtool).
prometheus:
	$(call debian,command -v prometheus >/dev/null && command -v promtool >/dev/null,prometheus,make test needs Debian's prometheus)

# The SQL source test starts Debian's PostgreSQL server (initdb, postgres) on a private port and folder.
postgresql:
	$(call debian,ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v psql >/dev/null,postgresql,make test needs Debian's postgresql)

# Spark's JVM: the machine's Java runtime, or Debian's headless JRE 17.
java:
	$(call debian,command -v java >/dev/null,openjdk-17-jre-headless,make test needs a Java runtime for Spark)

# The stream test runs Debian's nats-server with JetStream on loopback ports.
nats-server:
	$(call debian,command -v nats-server >/dev/null,nats-server,make test needs Debian's nats-server)

build:
	$(CARGO) build $(CARGO_FLAGS) --bins

venv: $(DVC)
$(DVC): requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(DVC)

# A venv per set of Python tools: .venv-<name> from requirements-<name>.txt (shap, spark, peers).
.venv-%/bin/python: requirements-%.txt
	python3 -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --disable-pip-version-check -r $<
	@touch $@

$(MLFLOW): requirements-mlflow.txt
	python3 -m venv .venv-mlflow
	.venv-mlflow/bin/pip install --quiet --disable-pip-version-check -r requirements-mlflow.txt
	@touch $(MLFLOW)

# Benchmarks beside the Python reference in ../shared/reference (figures, not pass/fail).
bench: bench-train bench-serve

bench-train: build $(DVC)
	bench/train.sh

bench-serve: build $(DVC)
	bench/serve.sh

# `make run` on fresh clones (own target folders): min / median / max seconds (bar: 300 s).
# A million-line Zeek conn.log: predict (one core) beside pandas + scikit-learn.
bench-zeek: build $(DVC)
	bench/zeek.sh

# The URL model beside scikit-learn on the published URL features; predict's URLs/s.
bench-urls: build $(DVC)
	bench/urls.sh

bench-build:
	bench/build.sh

clean:
	rm -rf artifacts models reports plots/roc.json

# Stream scoring throughput on a local NATS JetStream, 1 and 2 workers (bench/stream.sh).
bench-stream: build nats-server
	bench/stream.sh

# Wall time and peak RSS of train and predict at 10k..5M synthetic UNSW-NB15 rows, stream
# throughput with 1 and 2 workers; writes the README's scaling table and bench/results/scale.svg.
bench-scale: build $(DVC) nats-server
	bench/scale.sh

# Our GBM beside LightGBM, XGBoost and lleaves (.venv-peers): fit, accuracy, in-memory scoring and
# predict end to end, one thread and both cores, on NSL-KDD and phishing; writes the README table.
bench-peers: build $(DVC) .venv-peers/bin/python
	bench/peers.sh
