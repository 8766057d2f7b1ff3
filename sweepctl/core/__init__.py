"""The pure core: spec, trials, manifests and plans. No I/O, no clocks, no network."""
