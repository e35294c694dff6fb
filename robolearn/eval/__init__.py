"""Evaluation of policies by rollouts in the sim (``robolearn-eval``); see ``rollout.py``."""
