"""SQL backend (SQLAlchemy): the store, its engine, URL, schema and migrations."""
