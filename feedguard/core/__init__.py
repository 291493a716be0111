"""What both services share: catalog, typed configuration, clients, logging, Redis keys.

Importing it needs only the base install (YAML, Redis, structlog), so a
pipeline task can call ``feedguard.core.record.record_success_from_config``
without the services' stacks.
"""
