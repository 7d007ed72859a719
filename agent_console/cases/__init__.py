"""Case self-service: lookups and identity checks for IVR workers, the case view for staff (issue 8)."""
