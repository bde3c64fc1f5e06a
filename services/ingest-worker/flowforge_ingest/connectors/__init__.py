"""Database connections: the connectors (one per database type), the statements a read sends
(sql), and how source types become Arrow types (types).

Connection strings and the network guard are rules the catalog applies too: they live in
``flowforge_rules`` (``connstrings``, ``network``). The modules here are building blocks:
nothing opens a connection on import, and the database drivers are imported only by the code
that connects.
"""
