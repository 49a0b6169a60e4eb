"""The gateway service: latest prediction per symbol over HTTP, and a resumable SSE push stream, for many clients.

Each replica reads every partition of the predictions topic on its own (no consumer group), so replicas are
interchangeable and scale horizontally behind a load balancer.
"""
