from flowforge_shared.db.migrate import run_migrations

run_migrations()
