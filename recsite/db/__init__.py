"""Database backends of recsite's own (see :mod:`recsite.db.postgresql`)."""
