# Two commands do everything on a fresh machine (Python 3.11+, Go 1.26+, openssl):
#   make demo   set up, run the demo sweep on this machine, and show its results
#   make test   set up, build the test control plane (first run only), run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,test,search]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/sweepctl apply specs/demo.yaml --auto-approve
	$(BIN)/sweepctl status specs/demo.yaml
	$(BIN)/sweepctl report specs/demo.yaml --out .sweepctl/starry-demo.png

test: setup
	$(BIN)/pytest

clean:
	tests/cluster/down
	rm -rf .sweepctl
