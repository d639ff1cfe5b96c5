# The two commands a new user needs:
#   make demo   the whole pipeline on the bundled sample, on a local stack it starts itself
#   make test   the test suite, against the same local stack
# Both install what is missing first: the project's virtual environment and the stack's services.

VENV := .venv
PYTHON := $(VENV)/bin/python
STACK := deploy/local/stack
PYTEST_ARGS ?=

.PHONY: setup stack test demo down status

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

stack:
	$(STACK) up

test: setup stack
	eval "$$($(STACK) env)" && $(VENV)/bin/pytest $(PYTEST_ARGS)

demo: setup stack
	eval "$$($(STACK) env)" && $(PYTHON) -m workers demo

down:
	$(STACK) down

status:
	$(STACK) status
