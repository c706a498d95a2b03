"""``python -m anpr.ingest`` runs the service."""

from anpr.ingest.server import main

main()
