"""Rules of the data the services exchange, in one place that producer and consumer both use (validation happens
once, at the edge, with the same rules on both sides)."""
