"""Alembic environment and revisions of the SQL tracker store (shipped in the wheel)."""
