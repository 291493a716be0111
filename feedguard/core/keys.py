"""Redis keys shared with the platform and operators (see shared contracts)."""

PROVIDER_STATUS_PREFIX = "external:provider_status:"
LAST_SUCCESS_PREFIX = "external:last_success:"


def provider_status_key(provider: str) -> str:
    return f"{PROVIDER_STATUS_PREFIX}{provider}"


def last_success_key(provider: str, dataset: str) -> str:
    return f"{LAST_SUCCESS_PREFIX}{provider}:{dataset}"
