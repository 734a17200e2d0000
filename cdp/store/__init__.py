"""PostgreSQL adapters: connections, migrations, and the offset fence."""
