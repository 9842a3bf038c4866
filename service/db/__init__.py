"""SQL storage: typed models, engine/session setup, migrations and queries."""
