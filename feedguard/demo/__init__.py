"""``make demo``: the whole loop on loopback, stale feed to resolved incident.

Runs redis-server, feedguard-exporter, feedguard-responder (dry run),
Prometheus with the rules of the generator's ``demo`` profile and Alertmanager
wired to the responder, all on free loopback ports with their data under one
temporary directory, plus a stand-in for the providers' health endpoints and
for Slack.  It imports neither service: it runs them as processes, the way an
operator would.
"""
