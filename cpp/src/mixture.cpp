#include "entrosum/mixture.hpp"

#include <cmath>
#include <limits>

#include "entrosum/entropy.hpp"
#include "entrosum/random.hpp"

namespace entrosum {

template <typename T>
void normalise_log_joint(Eigen::Ref<RowMatrix<T>> log_joint, const Eigen::Ref<const Eigen::VectorXd>& weights,
                         MixtureTotals& totals) {
  using ArrayT = Eigen::Array<T, Eigen::Dynamic, 1>;
  const Index n = log_joint.rows();
  if (n == 0) return;
  // One vectorised exp per entry: e = exp(l − max_k l), r = e / Σ_k e, log r = l − max − log Σ_k e.
  const ArrayT largest = log_joint.rowwise().maxCoeff().array();
  log_joint.array().colwise() -= largest;                       // l − max
  RowMatrix<T> scaled = log_joint.array().exp().matrix();       // e
  const ArrayT sums = scaled.rowwise().sum().array();
  const ArrayT log_sums = sums.log();
  log_joint.array().colwise() -= log_sums;                      // log r
  scaled.array().colwise() /= sums;                             // r
  // −Σ_k r log r per row (0 log 0 = 0: r underflows to 0 while log r stays finite)
  const Eigen::ArrayXd entropy = (scaled.array() * log_joint.array()).rowwise().sum().template cast<double>() * -1.0;
  const Eigen::ArrayXd log_norm = (largest + log_sums).template cast<double>();
  if (weights.size()) {
    totals.count += weights.sum();
    totals.log_likelihood += (weights.array() * log_norm).sum();
    totals.resp_entropy += (weights.array() * entropy).sum();
    scaled.array().colwise() *= weights.array().template cast<T>();
  } else {
    totals.count += static_cast<double>(n);
    totals.log_likelihood += log_norm.sum();
    totals.resp_entropy += entropy.sum();
  }
  const Eigen::Matrix<T, Eigen::Dynamic, 1> ones = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(n);
  totals.resp_sum += (scaled.transpose() * ones).template cast<double>();
  log_joint = scaled;  // the weighted responsibilities w_n r_nk
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
