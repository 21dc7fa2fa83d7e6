"""Hydra plugins of certssb: the ``experiment`` config group and the config search path."""
