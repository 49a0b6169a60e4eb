"""`tickcast demo`: broker, workers, a synthetic feed and a live view, started and stopped together."""

#: The feed's producer linger and the view's fetch wait. Both add to every latency the view shows: a tick waits up
#: to the linger before it is sent, and the embedded broker holds each of the view's fetches for the whole wait.
#: Here, not in ``run``, so the CLI's defaults need no import of the demo's machinery.
DEMO_FEED_LINGER_MS = 20
DEMO_VIEW_FETCH_WAIT_MS = 50
