"""``python -m anpr.recognize`` runs the service."""

from anpr.recognize.server import main

main()
