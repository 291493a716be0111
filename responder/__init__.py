"""feedguard responder: runs the external data outage runbook on Alertmanager notifications."""
