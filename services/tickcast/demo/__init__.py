"""`tickcast demo`: broker, workers, a synthetic feed and a live view, started and stopped together."""

#: The feed's producer linger, the view's fetch wait, and the workers' fetch wait and producer linger. Each adds to
#: every latency the view shows: a tick (or prediction) waits up to a linger before it is sent, and the embedded
#: broker answers a fetch that finds nothing up to half its wait after data arrives (measured on Tansu 0.6).
#: Short values cost the broker more requests, which matters little at the demo's ~300 ticks/s (issue 18, 2
#: workers, load ~5: view p50 46 ms with 20/50 and the workers' own 20/5; 33 ms with 5/10; 20 ms with 5/10 and 10/2).
#: Here, not in ``run``, so the CLI's defaults need no import of the demo's machinery.
DEMO_FEED_LINGER_MS = 5
DEMO_VIEW_FETCH_WAIT_MS = 10
DEMO_WORKER_FETCH_WAIT_MS = 10
DEMO_WORKER_LINGER_MS = 2
