# Two commands do everything on a fresh machine (Python 3.11+, Go 1.26+, openssl):
#   make demo   set up, run the demo sweep on this machine, and show its results
#   make test   set up, build the test control plane (first run only), run every test
# and a third runs the examples:
#   make examples   set up, sweep each of examples/ here, rank it and draw its report
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo examples test clean

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

# The examples run `python train.py`: the virtualenv's python, as in a shell that activated it.
EXAMPLES := keras tensorboardx stdout
examples: setup
	@for e in $(EXAMPLES); do \
	  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sweepctl apply examples/$$e/spec.yaml --auto-approve \
	  && $(BIN)/sweepctl status examples/$$e/spec.yaml \
	  && $(BIN)/sweepctl report examples/$$e/spec.yaml --out .sweepctl/example-$$e.png || exit 1; \
	done

test: setup
	$(BIN)/pytest

clean:
	tests/cluster/down
	rm -rf .sweepctl
