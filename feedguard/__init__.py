"""feedguard: detects third-party data feed outages and automates the runbook's response.

``feedguard.core`` is what both services stand on (catalog, configuration,
clients, logging, record-success); ``feedguard.exporter`` and
``feedguard.responder`` are the two services, siblings that never import each
other.  ``feedguard/exporter`` and ``feedguard/responder`` are links to the
repository's top-level folders of the same names.
"""
