"""Redis keys shared with the platform and operators (see shared contracts)."""

PROVIDER_STATUS_PREFIX = "external:provider_status:"
LAST_SUCCESS_PREFIX = "external:last_success:"


def provider_status_key(provider: str) -> str:
    return f"{PROVIDER_STATUS_PREFIX}{provider}"


def last_success_key(provider: str, dataset: str) -> str:
    return f"{LAST_SUCCESS_PREFIX}{provider}:{dataset}"


# Kept by the exporter's OpenLineage intake (docs/lineage.md): the newest FAIL or
# ABORT of a provider's job with its error message, for the provider's next
# incident, and one marker per event already counted (re-deliveries change nothing).
LINEAGE_FAILURE_PREFIX = "feedguard:lineage:last_failure:"
LINEAGE_SEEN_PREFIX = "feedguard:lineage:seen:"


def lineage_failure_key(provider: str) -> str:
    return f"{LINEAGE_FAILURE_PREFIX}{provider}"


def lineage_seen_key(digest: str) -> str:
    return f"{LINEAGE_SEEN_PREFIX}{digest}"


# Kept by the exporter's health probes (docs/exporter.md#probe-onset): epoch seconds of
# the first failed probe of a provider's current failing streak (set if absent while
# the probe fails, with a lifetime refreshed each failing scrape; deleted when it
# passes).  The responder reads it as the probe onset of an incident's detection lag.
PROBE_FAILING_SINCE_PREFIX = "feedguard:probe:failing_since:"


def probe_failing_since_key(provider: str) -> str:
    return f"{PROBE_FAILING_SINCE_PREFIX}{provider}"
