"""``/api/kb``: the FAQ knowledge base for the console (entries, history, import/export)."""
