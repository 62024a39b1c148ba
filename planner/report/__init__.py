"""Turn results into documents: the JSON envelope (plain data) and human tables (rich)."""
