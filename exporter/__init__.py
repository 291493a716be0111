"""feedguard exporter: publishes external data freshness and provider health to Prometheus."""
