"""Offline evaluation: replay a tick file through the worker's own forecasting step and score it (no broker).

Research tooling beside the services, like ``demo``: it runs the predictor's code, so it imports
``tickcast.predictor``; no service imports it. Plotting is optional (:mod:`tickcast.evaluation.plot`).
"""

from __future__ import annotations

from tickcast.evaluation.scoring import OVERALL, EvaluationReport, ModelReport, Score, evaluate

__all__ = ["OVERALL", "EvaluationReport", "ModelReport", "Score", "evaluate"]
