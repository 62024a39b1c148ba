"""The edge of the system: the only package that reads files, YAML and pydantic models."""
