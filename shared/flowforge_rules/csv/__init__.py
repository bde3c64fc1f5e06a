"""How a CSV column is typed, shared by schema detection (the catalog) and the ingest
worker's CSV reader, so a file is typed the same whether a job names its upload or its path.

* :mod:`flowforge_rules.csv.inference`: a column's type and null tokens from its values
  (:func:`~flowforge_rules.csv.inference.infer_type`,
  :func:`~flowforge_rules.csv.inference.split_nulls`);
* :mod:`flowforge_rules.csv.columns`: :class:`~flowforge_rules.csv.columns.DetectedColumn`,
  a column as detection describes it, and its vocabulary (types, semantic types, PII);
* :mod:`flowforge_rules.csv.overrides`: the ``fileConfig.columns`` entry that loads a
  detected column (:func:`~flowforge_rules.csv.overrides.column_override`).
"""
