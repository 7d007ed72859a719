"""Call records: events from IVR workers (``/internal/events``) folded into one row per call."""
