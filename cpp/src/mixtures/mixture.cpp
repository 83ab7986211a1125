#include "entrosum/mixtures/mixture.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/simd_exp.hpp"
#include "../core/simd_mask.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/core/random.hpp"

namespace entrosum {

namespace {

/// log of T's smallest normal number: below it exp(l') is subnormal or zero.
template <typename T>
constexpr T kExpUnderflow = T(-87.33654475);  // float: log(1.17549435e-38)
template <>
constexpr double kExpUnderflow<double> = -708.3964185322641;  // log(2.2250738585072014e-308)

/// One row's log-sum-exp in SIMD packets (Eigen's packet math, so every build's vector width is used):
/// with l' = l − max_k l and e = exp(l'), writes e over the row and returns (Σ_k e, Σ_k e l').
/// Lanes with l' below log(smallest normal) are written as exact zeros, never as subnormals: once components
/// separate most lanes are such, and subnormal values would slow every later product over the row (the
/// M-step's, above all). They add nothing at the precision of Σ e ≥ 1. The per-row work is a few packets, so
/// whole-row expressions would cost more in loop set-up than in arithmetic; this keeps the row in registers and
/// L1 for three short loops.
template <typename T>
std::pair<T, T> exponentiate_row(T* row, Index K, T largest) {
  namespace ei = Eigen::internal;
  using Packet = typename ei::packet_traits<T>::type;
  constexpr Index width = ei::packet_traits<T>::size;
  const Packet shift = ei::pset1<Packet>(largest);
  const Packet underflow = ei::pset1<Packet>(kExpUnderflow<T>);
  const Packet zero = ei::pset1<Packet>(T(0));
  Packet sums = zero, dots = zero;
  Index k = 0;
  for (; k + width <= K; k += width) {
    const Packet shifted = ei::psub(ei::ploadu<Packet>(row + k), shift);
    const Packet kept = ei::pcmp_le(underflow, shifted);  // all-ones lanes where exp(l') is a normal number
    if (!detail::any_lane_set(kept)) {
      ei::pstoreu(row + k, zero);  // every lane underflows: skip the exp
      continue;
    }
    // exp where l' is at or above the threshold, exact 0 elsewhere (pand with an all-ones or all-zeros mask)
    const Packet scaled = ei::pand(detail::exp_of_shifted(shifted, underflow), kept);
    sums = ei::padd(sums, scaled);
    dots = ei::pmadd(scaled, shifted, dots);
    ei::pstoreu(row + k, scaled);
  }
  T sum = ei::predux(sums), dot = ei::predux(dots);
  for (; k < K; ++k) {
    const T shifted = row[k] - largest;
    const T scaled = shifted < kExpUnderflow<T> ? T(0) : std::exp(shifted);
    sum += scaled;
    dot += scaled * shifted;
    row[k] = scaled;
  }
  return {sum, dot};
}

/// The largest of a row's K values, a SIMD packet at a time (Eigen's maxCoeff on a run-time row sets up more than
/// a few packets cost). Any NaN in the row makes the result NaN or a value of the row, as maxCoeff may.
template <typename T>
T row_max(const T* row, Index K) {
  namespace ei = Eigen::internal;
  using Packet = typename ei::packet_traits<T>::type;
  constexpr Index width = ei::packet_traits<T>::size;
  T top = -std::numeric_limits<T>::infinity();
  Index k = 0;
  if (K >= width) {
    Packet tops = ei::ploadu<Packet>(row);
    for (k = width; k + width <= K; k += width) tops = ei::pmax(tops, ei::ploadu<Packet>(row + k));
    top = ei::predux_max(tops);
  }
  for (; k < K; ++k) top = std::max(top, row[k]);
  return top;
}

/// Multiplies a row of e by `factor` = w / Σ e, writing exact zeros where the product would be subnormal
/// (e near the threshold divided by a sum > 1, or a small sample weight), and adds the row to `total` (K).
template <typename T>
void scale_row(T* row, Index K, T factor, T* total) {
  namespace ei = Eigen::internal;
  using Packet = typename ei::packet_traits<T>::type;
  constexpr Index width = ei::packet_traits<T>::size;
  const Packet scale = ei::pset1<Packet>(factor);
  const Packet smallest = ei::pset1<Packet>(std::numeric_limits<T>::min());
  Index k = 0;
  for (; k + width <= K; k += width) {
    const Packet product = ei::pmul(ei::ploadu<Packet>(row + k), scale);
    const Packet scaled = ei::pand(product, ei::pcmp_le(smallest, product));
    ei::pstoreu(row + k, scaled);
    ei::pstoreu(total + k, ei::padd(ei::ploadu<Packet>(total + k), scaled));
  }
  for (; k < K; ++k) {
    const T scaled = row[k] * factor;
    row[k] = scaled < std::numeric_limits<T>::min() ? T(0) : scaled;
    total[k] += row[k];
  }
}

}  // namespace

template <typename T>
void normalise_log_joint(Eigen::Ref<RowMatrix<T>> log_joint, const Eigen::Ref<const Eigen::VectorXd>& weights,
                         MixtureTotals& totals, Eigen::VectorXd& row_log_likelihood) {
  const Index n = log_joint.rows(), K = log_joint.cols();
  row_log_likelihood.resize(n);
  if (n == 0) return;
  // Row by row: with l' = l − max_k l, e = exp(l'), s = Σ_k e,
  //   log p(x) = max + log s,  r = e / s,  −Σ_k r log r = log s − (Σ_k e l') / s,
  // the last because log r = l' − log s and Σ_k r = 1 (0 log 0 = 0 comes out by itself: e = 0).
  // Three passes, so that no row waits on a scalar log or division: exp per row, then the logs and factors of
  // all rows as vector arithmetic, then the scaling per row (with the column sums in the same pass).
  Eigen::Array<T, 1, Eigen::Dynamic> resp_sum = Eigen::Array<T, 1, Eigen::Dynamic>::Zero(K);
  Eigen::ArrayXd largest(n), sums(n), dots(n);
  for (Index row = 0; row < n; ++row) {
    const T top = row_max(&log_joint(row, 0), K);
    const auto [sum, dot] = exponentiate_row<T>(&log_joint(row, 0), K, top);
    largest(row) = static_cast<double>(top);
    sums(row) = static_cast<double>(sum);
    dots(row) = static_cast<double>(dot);
  }
  const Eigen::ArrayXd log_sums = sums.log();
  const Eigen::ArrayXd row_weights = weights.size() ? weights.array().eval() : Eigen::ArrayXd::Ones(n);
  row_log_likelihood = (largest + log_sums).matrix();
  const double count = row_weights.sum();
  const double log_likelihood = (row_weights * row_log_likelihood.array()).sum();
  const double resp_entropy = (row_weights * (log_sums - dots / sums)).sum();
  const Eigen::Array<T, Eigen::Dynamic, 1> factors = (row_weights / sums).template cast<T>();              // w_n / Σ e
  for (Index row = 0; row < n; ++row) scale_row<T>(&log_joint(row, 0), K, factors(row), resp_sum.data());  // w r
  totals.count += count;
  totals.log_likelihood += log_likelihood;
  totals.resp_entropy += resp_entropy;
  totals.resp_sum += resp_sum.matrix().transpose().template cast<double>();
}

std::vector<const WorstSample*> reseed_samples(const std::vector<Index>& components, const WorstSamples& worst,
                                               const std::string& why) {
  if (components.size() > worst.samples.size())
    throw NumericalError("component " + std::to_string(components[worst.samples.size()]) + " " + why +
                         ", and no further sample is left to re-seed it at");
  std::vector<const WorstSample*> samples;
  for (std::size_t i = 0; i < components.size(); ++i) samples.push_back(&worst.samples[i]);
  return samples;
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

ResponsibilitySource random_responsibilities(std::uint64_t seed, Index row_offset) {
  return [seed, row_offset](Index begin, Index end, Eigen::Ref<RowMatrix<double>> resp) {
    for (Index n = begin; n < end; ++n) {
      Random random(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(n + row_offset + 1)));
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
                                                   const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index begin,
                                                   Index end, Index n_components, MixtureTotals& totals) {
  RowMatrix<double> resp(end - begin, n_components);  // (n, K) w_n r_nk
  source(begin, end, resp);
  const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
  if (weights.size()) resp.array().colwise() *= weights.array();
  totals.count += weights.size() ? weights.sum() : static_cast<double>(end - begin);
  totals.resp_sum += resp.colwise().sum().transpose();
  return resp;
}

template void normalise_log_joint<float>(Eigen::Ref<RowMatrix<float>>, const Eigen::Ref<const Eigen::VectorXd>&,
                                         MixtureTotals&, Eigen::VectorXd&);
template void normalise_log_joint<double>(Eigen::Ref<RowMatrix<double>>, const Eigen::Ref<const Eigen::VectorXd>&,
                                          MixtureTotals&, Eigen::VectorXd&);

}  // namespace entrosum
