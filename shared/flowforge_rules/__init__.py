"""FlowForge's rules: pure checks that more than one service applies, in one place.

A service imports these instead of importing another service: the catalog checks a
connection string, a user's SQL query and a derived column's expression when they are
saved, and the workers check them again before they run anything.

* :mod:`flowforge_rules.connstrings`: connection strings read into one shape, ODBC and
  SQLAlchemy strings built back from it;
* :mod:`flowforge_rules.network`: the network guard (where FlowForge may connect, which
  driver options are refused);
* :mod:`flowforge_rules.read_only_query`: a user's database query is one read-only SELECT;
* :mod:`flowforge_rules.expressions`: a derived column's or filter's SQL expression is on
  the allowlist (sqlglot only; the DuckDB sandbox that evaluates it is the transform
  worker's);
* :mod:`flowforge_rules.databases`: how messages name each database type;
* :mod:`flowforge_rules.csv`: how a CSV column is typed (inference, the detected column
  and the ``fileConfig`` override that loads it), for detection and the CSV reader alike.

This package holds no state: no database, no settings, no connections, no caches of
anything a user configured. Whatever a rule needs (an allow list, a timeout, a resolver) is
passed in by its caller. It imports no service package and, of ``flowforge_shared``, only
the pure contracts (``.importlinter`` enforces both).
"""
