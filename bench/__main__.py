"""``python -m bench`` (``make bench``): every benchmark, each against its same-run baseline."""

import sys

from . import config_load, first_action, lineage, scrape, storm, tracing, webhook

sys.exit(
    max(
        scrape.main([]),
        webhook.main([]),
        tracing.main([]),
        storm.main([]),
        lineage.main([]),
        config_load.main([]),
        first_action.main([]),
    )
)
