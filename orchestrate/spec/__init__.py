"""Pipeline definitions: YAML + JSON Schema → frozen typed model (DESIGN §2)."""
