#include "entrosum/mixture.hpp"

#include <cmath>
#include <limits>

#include "entrosum/entropy.hpp"
#include "entrosum/random.hpp"

namespace entrosum {

template <typename T>
void normalise_log_joint(Eigen::Ref<RowMatrix<T>> log_joint, const Eigen::Ref<const Eigen::VectorXd>& weights,
                         MixtureTotals& totals) {
  const Index n_components = log_joint.cols();
  for (Index n = 0; n < log_joint.rows(); ++n) {
    auto row = log_joint.row(n);
    const double weight = weights.size() ? weights(n) : 1.0;
    // log p(x_n) = log Σ_k exp(log joint), shifted by the row maximum
    const T largest = row.maxCoeff();
    const double log_norm = static_cast<double>(largest) +
                            std::log(static_cast<double>((row.array() - largest).exp().sum()));
    double entropy = 0.0;
    for (Index k = 0; k < n_components; ++k) {
      const double log_resp = static_cast<double>(row(k)) - log_norm;
      const double resp = std::exp(log_resp);
      if (resp > 0.0) entropy -= resp * log_resp;  // 0 log 0 = 0
      totals.resp_sum(k) += weight * resp;
      row(k) = static_cast<T>(weight * resp);
    }
    totals.count += weight;
    totals.log_likelihood += weight * log_norm;
    totals.resp_entropy += weight * entropy;
  }
}

double mixture_elbo_at(const MixtureTotals& totals, const Eigen::VectorXd& weights, double expected_log_observable) {
  double expected_log_prior = 0.0;  // Σ_k N_k log π_k, with 0 log 0 = 0
  for (Index k = 0; k < weights.size(); ++k)
    if (totals.resp_sum(k) > 0.0) expected_log_prior += totals.resp_sum(k) * std::log(weights(k));
  return (expected_log_prior + expected_log_observable + totals.resp_entropy) / totals.count;
}

ElboTerms mixture_elbo_terms(const MixtureTotals& totals, const Eigen::VectorXd& weights,
                             double observable_entropy_per_sample) {
  ElboTerms terms;
  terms.posterior_entropy = totals.resp_entropy / totals.count;
  terms.prior_entropy = entropy::categorical(weights);
  terms.observable_entropy = observable_entropy_per_sample;
  return terms;
}

ResponsibilitySource random_responsibilities(std::uint64_t seed) {
  return [seed](Index begin, Index end, Eigen::Ref<RowMatrix<double>> resp) {
    for (Index n = begin; n < end; ++n) {
      Random random(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(n + 1)));
      for (Index k = 0; k < resp.cols(); ++k) resp(n - begin, k) = random.uniform();
      resp.row(n - begin) /= resp.row(n - begin).sum();
    }
  };
}

ResponsibilitySource label_responsibilities(const int* labels) {
  return [labels](Index begin, Index end, Eigen::Ref<RowMatrix<double>> resp) {
    resp.setZero();
    for (Index n = begin; n < end; ++n)
      if (labels[n] >= 0) resp(n - begin, labels[n]) = 1.0;
  };
}

RowMatrix<double> weighted_source_responsibilities(const ResponsibilitySource& source,
                                                   const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                   Index begin, Index end, Index n_components, MixtureTotals& totals) {
  RowMatrix<double> resp(end - begin, n_components);  // (n, K) w_n r_nk
  source(begin, end, resp);
  const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
  if (weights.size()) resp.array().colwise() *= weights.array();
  totals.count += weights.size() ? weights.sum() : static_cast<double>(end - begin);
  totals.resp_sum += resp.colwise().sum().transpose();
  return resp;
}

template void normalise_log_joint<float>(Eigen::Ref<RowMatrix<float>>, const Eigen::Ref<const Eigen::VectorXd>&,
                                         MixtureTotals&);
template void normalise_log_joint<double>(Eigen::Ref<RowMatrix<double>>, const Eigen::Ref<const Eigen::VectorXd>&,
                                          MixtureTotals&);

}  // namespace entrosum
