"""``python -m bench`` (``make bench``): every benchmark, each against its same-run baseline."""

import sys

from . import config_load, lineage, scrape, webhook

sys.exit(max(scrape.main([]), webhook.main([]), lineage.main([]), config_load.main([])))
