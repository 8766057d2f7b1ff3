"""sweepctl: Terraform-style plan/apply for TensorFlow hyperparameter sweeps.

Layers, each importing only those below it:
cli -> commands -> views, backends -> core (pure: spec, trials, manifests, plan).
"""

__version__ = "0.1.0"
