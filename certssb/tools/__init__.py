"""Entry points beside the pipeline: falsification, benchmark, report (reuse the pipeline's steps)."""
