"""Experiment configs (experiments/configs/*.yaml), the runner and the benchmark."""
