"""The chunk-level step API of every model family (DESIGN.md §4).

E-step on a chunk -> mergeable statistics -> M-step. The families' steps live with their models
(``mixtures.steps``, ``linear.steps``, ``sparse.steps``); this module holds what they share.

Each family is a small, picklable object (it holds only settings: strings and numbers) with

* ``chunk_statistics(params, X, sample_weight, n_threads, chunk_size, row_offset)``: the C++ pass over one chunk
  of rows (rows ``row_offset + n`` of the data set: mixtures remember their worst-explained rows by number),
  returning a statistics value from ``_core`` that holds sums (not means) and the ELBO pieces summed over the
  chunk; values merge with ``a + b`` (in a fixed order for reproducible sums), scale with ``scaled(f)`` and
  pickle, so Dask can ship them between processes;
* ``statistics_depend_on_params``: False for PPCA and factor analysis, whose chunk statistics are the data's
  moments (count, mean, scatter) -- the exact posterior's statistics are linear in them for any parameters,
  so one pass serves every iteration;
* ``refine(params, stats)``: parameters that the statistics determine before the E-step (PPCA/FA: μ at the
  data mean, its exact optimum); the identity elsewhere;
* ``expectation(stats, params)``: q's statistics at ``params`` (the statistics themselves for the mixtures
  and sparse coding, computed from the moments for PPCA/FA);
* ``terms(expectation, params)``: F(q, Θ) per sample and the entropy sum's three terms (a dict);
* ``m_step(expectation, params, stats)``: new parameters (a dict of float64 arrays, the format ``_core``
  takes); ``stats`` are the merged statistics the expectation came from.

Parameters are plain dicts of numpy arrays and floats, so they pickle too. The drivers in ``stepwise``
(stepwise EM for ``partial_fit``) and ``dask_em`` (EM over the blocks of a Dask array) use only this interface.
"""

from __future__ import annotations

from typing import Any

Params = dict[str, Any]


class StatisticsAreExpectation:
    """For families whose chunk statistics are q's statistics at the parameters of their E-step.

    That is every family whose E-step passes over the data with the current parameters (mixtures, sparse
    coding); their parameters all come from the M-step, so nothing is refined before it.
    """

    statistics_depend_on_params = True

    def refine(self, params: Params, stats: Any) -> Params:
        """Return the parameters unchanged (every parameter comes from the M-step)."""
        return params

    def expectation(self, stats: Any, params: Params) -> Any:
        """Return the statistics themselves: they are q's statistics at the parameters of their E-step."""
        return stats


def merge(values: list[Any]) -> Any:
    """Sum statistics values pairwise in a fixed tree order (the same order for the same list)."""
    if not values:
        raise ValueError("no statistics to merge")
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i] for i in range(0, len(values), 2)]
    return values[0]
