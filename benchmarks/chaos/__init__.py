"""The fault campaign (``make chaos``): the whole system on loopback, real
traffic, faults at random moments, then every conclusion of the portal
checked against a model computed from the scenario. See README "Fault
campaign" and ``python -m benchmarks.chaos --help``."""
