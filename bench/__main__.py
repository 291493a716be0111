"""``python -m bench`` (``make bench``): every benchmark; today the scrape benchmark."""

import sys

from .scrape import main

sys.exit(main())
