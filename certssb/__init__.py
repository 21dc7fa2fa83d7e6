"""certssb: certified backdoor defence by randomized smoothing (Cert-SSB and RAB)."""

__version__ = "0.1.0"
