"""`tickcast demo`: broker, workers, a synthetic feed and a live view, started and stopped together."""

#: The feed's producer linger, the view's fetch wait, and the workers' fetch wait and producer linger. Each adds to
#: every latency the view shows: a tick (or prediction) waits up to a linger before it is sent, and the embedded
#: broker answers a fetch that finds nothing up to half its wait after data arrives (measured on Tansu 0.6).
#: Short values cost the broker more requests, which matters little at the demo's ~300 ticks/s (issue 18, 2
#: workers, load ~5: view p50 46 ms with 20/50 and the workers' own 20/5; 33 ms with 5/10; 20 ms with 5/10 and 10/2).
#: Session 9, split topology, alternating rounds at load 5-9: view p50 32.8/38.2/44.9/34.0 ms with both fetch
#: waits at 5 against 48.8/45.9/46.7/54.6 at 10 (p99 93-116 either way); at 2 the broker's extra requests made it
#: worse (84.0/57.5). Here, not in ``run``, so the CLI's defaults need no import of the demo's machinery.
DEMO_FEED_LINGER_MS = 5
DEMO_VIEW_FETCH_WAIT_MS = 5
DEMO_WORKER_FETCH_WAIT_MS = 5
DEMO_WORKER_LINGER_MS = 2
#: Where the demo's processes run: ``split`` keeps the embedded broker, the gateway and the demo itself (feed and
#: view) off the last core and puts the workers there, as in production where the broker has machines of its
#: own; ``shared`` lets every process run on every core. Split needs Linux and 2 CPUs (else the demo runs shared).
#: Measured at ~300 ticks/s with two workers (2 cores, load 3-6, alternating rounds): view p50 48.8/45.9 ms split
#: against 67.7/78.5 ms shared, p99 ~95 ms against 181-1,495 (README, issue 18).
DEMO_TOPOLOGY = "split"
#: Partitions of the demo's topics. The embedded broker re-lists every batch stored in a partition when a fetch
#: finds new data there, so the fewer batches each partition holds, the cheaper the fetches of the broker's core
#: that the demo is bound by. Session 11 (two workers, ~300 ticks/s, split, alternating, load 1.7-4.3): view p50
#: 19.7/17.7/18.3/19.6 ms with 16 against 22.7/19.4/20.6/21.0 with 8, 21.7/21.2 with 32 (p99 33-41, once 265 with 32).
DEMO_PARTITIONS = 16
