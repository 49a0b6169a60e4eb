"""Offline evaluation: replay a tick file through the worker's own forecasting step and score it (no broker).

Research tooling beside the services, like ``demo``: it runs the predictor's code, so it imports
``tickcast.predictor``; no service imports it. :mod:`~tickcast.evaluation.scoring` runs the replay,
:mod:`~tickcast.evaluation.running_scores` keeps the per-symbol metrics, :mod:`~tickcast.evaluation.report`
holds and renders the result. Plotting is optional (:mod:`tickcast.evaluation.plot`, the ``plot`` extra).
"""

from __future__ import annotations

from tickcast.evaluation.report import OVERALL, EvaluationReport, ModelReport, Score, SkillPoint
from tickcast.evaluation.scoring import evaluate

__all__ = ["OVERALL", "EvaluationReport", "ModelReport", "Score", "SkillPoint", "evaluate"]
