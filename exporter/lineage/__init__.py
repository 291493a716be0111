"""OpenLineage intake: ``POST /api/v1/lineage`` turns RunEvents into last-success facts."""
