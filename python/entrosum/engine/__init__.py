"""The engine every model shares.

``driver`` is the one fit driver (validation, data source, EM, monitor, fitted attributes) and ``estimator``
the scikit-learn contract; ``validation`` checks data and settings; ``data_source`` reads memory maps and
iterables of chunks in place; ``steps`` is the chunk-level step interface (E-step on a chunk, mergeable
statistics, M-step) that ``stepwise`` (EM over merged statistics, stepwise EM), ``online`` (``partial_fit``)
and ``dask``/``dask_em`` (Dask arrays) drive.
"""
