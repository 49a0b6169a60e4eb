"""`tickcast demo`: broker, workers, a synthetic feed and a live view, started and stopped together."""
