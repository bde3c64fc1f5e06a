"""Database connections: connection strings (connstrings) and the network guard (network).

The modules here are pure building blocks: nothing opens a connection on import, and the
database drivers are imported only by the code that connects.
"""
