"""The database adapter: SQLAlchemy Core tables, the async engine, migrations, and
``SqlRepository``. Nothing here knows about HTTP or the cache."""
