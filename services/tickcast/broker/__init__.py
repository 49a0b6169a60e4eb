"""The embedded Kafka-compatible broker used by the demo and tests (never in production)."""
