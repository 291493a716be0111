"""One module per source the exporter reads; each builds fresh metric families per scrape."""
