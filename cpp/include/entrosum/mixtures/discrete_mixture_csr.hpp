// The discrete-mixture engine (discrete_mixture.hpp) on sparse data (CSR, core/csr.hpp), for the families whose
// log joint is linear in x with a base measure that zeros leave unchanged: Bernoulli, Poisson and multinomial
// (bag-of-words counts). A pass touches each stored entry once: the log joint of a row is
// log π_k − Σ_d A(m_kd) + Σ_{entries} x η(m_k,col), and the statistics Σ_n w r_nk x_n gather the same entries, so
// time and memory follow the nonzeros, never n × D. The M-step, F and S are the dense engine's (they read only the
// statistics), so a CSR fit equals the dense fit of the same data to rounding.
#pragma once

#include <Eigen/Core>

#include "entrosum/core/csr.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"

namespace entrosum {

/// The statistics of the exact posterior under `params` over CSR rows, the data term included (the chunk-level
/// E-step of partial_fit).
template <typename Family, typename T>
DiscreteMixtureStats discrete_mixture_csr_e_step(const CsrRef<T>& data,
                                                 const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                 const DiscreteMixtureParams& params,
                                                 const typename Family::Settings& settings, const Execution& execution);

/// EM on CSR data from initial parameters, as fit_discrete_mixture.
template <typename Family, typename T>
DiscreteMixtureFit fit_discrete_mixture_csr(const CsrRef<T>& data,
                                            const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                            const DiscreteMixtureParams& initial,
                                            const DiscreteMixtureOptions<Family>& options,
                                            const IterationCallback& on_iteration = {});

/// The initialising pass over CSR rows (discrete_mixture_responsibility_statistics).
template <typename Family, typename T>
DiscreteInitialStats discrete_mixture_csr_responsibility_statistics(
    const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, const ResponsibilitySource& source,
    Index n_components, const Execution& execution);

/// (n_samples) log p(x_n | Θ) of CSR rows and, when `resp` is non-null, the (n_samples, K) responsibilities.
template <typename Family, typename T>
Eigen::VectorXd discrete_mixture_csr_score(const CsrRef<T>& data, const DiscreteMixtureParams& params,
                                           const typename Family::Settings& settings, RowMatrix<double>* resp,
                                           const Execution& execution);

}  // namespace entrosum
