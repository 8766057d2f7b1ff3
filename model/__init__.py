"""tf-paint: the trainer that sweepctl sweeps. Run it as `python -m model --help`."""
