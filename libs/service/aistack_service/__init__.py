"""The shell every aistack backend stands on (docs/architecture.md, "A new backend")."""
