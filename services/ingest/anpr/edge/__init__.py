"""Edge agent (``anpr-edge``) for mobile units: local camera + GPS -> on-disk buffer -> ingest's PushFrames."""
