"""``python -m anpr.hotlist`` runs the service."""

from anpr.hotlist.server import main

main()
