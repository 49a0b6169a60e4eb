"""The predictor service: Faust workers that turn ticks into per-symbol online predictions."""
