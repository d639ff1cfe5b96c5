# The two commands a new user needs:
#   make demo   the whole pipeline on the bundled sample, on a local stack it starts itself
#   make test   the test suite, against the same local stack (in two halves at once), and the fault
#               suite (tests/faults/) beside it on a second stack of its own, in parallel; fails if
#               any fails
#   make test-main / make test-faults   one of the two alone
#   make demo BACKEND=label-studio      the demo with Label Studio as the review backend
# Both install what is missing first: the project's virtual environment and the stack's services.
# The main suite's stack includes Label Studio; the demo's only when BACKEND=label-studio.

VENV := .venv
PYTHON := $(VENV)/bin/python
STACK := deploy/local/stack
PYTEST_ARGS ?=
# Optional services `make stack` starts too, e.g. STACK_WITH=label-studio.
STACK_WITH ?=
# The demo's review backend, handed to it as HITL_REVIEW__BACKEND; empty: the configured default.
BACKEND ?=

.PHONY: setup stack stack-label-studio stack-faults test test-main test-faults demo down status

# The fault suite stops and starts services, so it gets a stack of its own: its own folder and
# ports, the same downloads.
FAULTS_STACK_ENV := HITL_STACK_DIR=$(CURDIR)/.stack/faults HITL_STACK_CACHE=$(CURDIR)/.stack/cache \
	HITL_KAFKA_PORT=9192 HITL_POSTGRES_PORT=5532 HITL_REDIS_PORT=6479 HITL_SEARCH_PORT=9250 \
	HITL_ARGILLA_PORT=6910
FAULTS_STACK := env $(FAULTS_STACK_ENV) $(STACK)
FAULTS_LOG := artifacts/test-faults.log

# The editable install builds the Avro writer's and reader's C extension in place: a change to it
# installs again.
$(VENV)/.installed: pyproject.toml setup.py workers/contracts/_avro_speedups.c
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

stack:
	$(STACK) up $(addprefix --with ,$(STACK_WITH))

stack-label-studio:
	$(STACK) up --with label-studio

stack-faults:
	$(FAULTS_STACK) up

# The main suite in the foreground, the fault suite in the background into $(FAULTS_LOG), shown
# when both are done.
test: setup stack-label-studio stack-faults
	@mkdir -p artifacts
	@$(MAKE) --no-print-directory test-faults-run >$(FAULTS_LOG) 2>&1 & faults=$$!; \
	$(MAKE) --no-print-directory test-main-run; main=$$?; \
	wait $$faults; faults_status=$$?; \
	echo "==> fault suite ($(FAULTS_LOG)) <=="; cat $(FAULTS_LOG); \
	echo "test: main suite exit $$main, fault suite exit $$faults_status"; \
	[ $$main = 0 ] && [ $$faults_status = 0 ]

test-main: setup stack-label-studio
	@$(MAKE) --no-print-directory test-main-run

test-faults: setup stack-faults
	@$(MAKE) --no-print-directory test-faults-run

# The main suite runs as two pytest processes at once, since its tests mostly wait on the services:
# the review tools' tests (and the demo) into $(REVIEW_LOG), the rest in the foreground. Both get
# PYTEST_ARGS; for a subset, run pytest itself (see the README's Tests section).
REVIEW_TESTS := tests/argilla_bridge tests/review_backends tests/gateway tests/smoke tests/test_demo.py
REVIEW_LOG := artifacts/test-review-tools.log

test-main-run:
	@mkdir -p artifacts
	@eval "$$($(STACK) env)" && \
	{ $(VENV)/bin/pytest -m "not faults" $(REVIEW_TESTS) $(PYTEST_ARGS) >$(REVIEW_LOG) 2>&1 & review=$$!; \
	  $(VENV)/bin/pytest -m "not faults" --ignore=tests/faults $(addprefix --ignore=,$(REVIEW_TESTS)) $(PYTEST_ARGS); \
	  rest=$$?; wait $$review; review_status=$$?; \
	  echo "==> review tools' tests and the demo ($(REVIEW_LOG)) <=="; cat $(REVIEW_LOG); \
	  echo "main suite: review tools exit $$review_status, the rest exit $$rest"; \
	  [ $$rest = 0 ] && [ $$review_status = 0 ]; }

test-faults-run:
	eval "$$($(FAULTS_STACK) env)" && env $(FAULTS_STACK_ENV) HITL_FAULTS_STACK=1 \
	  $(VENV)/bin/pytest tests/faults -m faults $(PYTEST_ARGS)

demo: setup $(if $(filter label-studio,$(BACKEND)),stack-label-studio,stack)
	eval "$$($(STACK) env)" && $(if $(BACKEND),HITL_REVIEW__BACKEND=$(BACKEND)) $(PYTHON) -m workers demo

down:
	$(STACK) down
	$(FAULTS_STACK) down

status:
	$(STACK) status
	@echo "fault suite's stack:"
	@$(FAULTS_STACK) status

# A labelled history of 20,000 predictions with known ground truth, routed by the band-router's
# code and reviewed by simulated reviewers straight into the quality tables (schema quality_demo),
# then `hitl-workers report` and `calibrate` on it; plots in .stack/quality/.
.PHONY: quality-demo
quality-demo: setup stack
	$(PYTHON) samples/generate.py --history 20000 --output .stack/quality/history.jsonl
	eval "$$($(STACK) env)" && $(PYTHON) -m workers.quality.demo .stack/quality/history.jsonl \
	  --output-dir .stack/quality
