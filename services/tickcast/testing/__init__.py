"""Test and benchmark harness shared by ``tests/`` and ``bench/``: no test-framework imports here.

A tool package like ``demo`` and ``cli``: it composes the services (real worker processes on a real broker),
so it may import any of them; no service imports it.
"""
