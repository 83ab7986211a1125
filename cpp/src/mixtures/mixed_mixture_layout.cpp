// The layout of a mixed mixture's columns and statistics, the checks of its settings, parameters and data, and the
// statistics T(x) of a chunk (mixed_mixture.hpp).
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "entrosum/mixtures/mixed_mixture.hpp"

namespace entrosum {

namespace {

constexpr double kMaxTrials = 9007199254740992.0;  // 2^53: every whole number up to it is a double
constexpr Index kMaxLevels = Index(1) << 24;       // a one-hot statistic per level: keep P sensible

bool is_whole(double value) { return std::isfinite(value) && value == std::floor(value); }

}  // namespace

const char* column_family_name(ColumnFamily family) {
  switch (family) {
    case ColumnFamily::gaussian:
      return "gaussian";
    case ColumnFamily::bernoulli:
      return "bernoulli";
    case ColumnFamily::poisson:
      return "poisson";
    case ColumnFamily::binomial:
      return "binomial";
    case ColumnFamily::categorical:
      return "categorical";
    case ColumnFamily::exponential:
      return "exponential";
    case ColumnFamily::gamma:
      return "gamma";
  }
  return "unknown";
}

MixedLayout mixed_layout(const MixedSpec& spec, Index n_features) {
  if (static_cast<Index>(spec.families.size()) != n_features)
    throw std::invalid_argument("the column families name " + std::to_string(spec.families.size()) +
                                " columns, but the data have " + std::to_string(n_features));
  if (!(spec.reg_covar >= 0.0) || !std::isfinite(spec.reg_covar))
    throw std::invalid_argument("reg_covar must be finite and non-negative");
  MixedLayout layout;
  layout.n_features = n_features;
  for (Index d = 0; d < n_features; ++d) {
    const int family = static_cast<int>(spec.families[static_cast<std::size_t>(d)]);
    if (family < 0 || family >= kColumnFamilies)
      throw std::invalid_argument("column " + std::to_string(d) + " has an unknown family code " +
                                  std::to_string(family));
    layout.columns[family].push_back(d);
  }
  const Index n_binomial = layout.count(ColumnFamily::binomial);
  if (spec.n_trials.size() != n_binomial)
    throw std::invalid_argument("n_trials holds " + std::to_string(spec.n_trials.size()) + " numbers for " +
                                std::to_string(n_binomial) + " binomial columns");
  for (Index j = 0; j < n_binomial; ++j)
    if (!is_whole(spec.n_trials(j)) || spec.n_trials(j) < 1.0 || spec.n_trials(j) > kMaxTrials)
      throw std::invalid_argument("n_trials of column " + std::to_string(layout.of(ColumnFamily::binomial)[j]) +
                                  " must be a whole number in [1, 2^53]");
  const Index n_categorical = layout.count(ColumnFamily::categorical);
  if (static_cast<Index>(spec.n_levels.size()) != n_categorical)
    throw std::invalid_argument("n_levels holds " + std::to_string(spec.n_levels.size()) + " numbers for " +
                                std::to_string(n_categorical) + " categorical columns");
  layout.level_offsets.assign(1, 0);
  for (Index j = 0; j < n_categorical; ++j) {
    const Index levels = spec.n_levels[static_cast<std::size_t>(j)];
    if (levels < 1 || levels > kMaxLevels)
      throw std::invalid_argument("n_levels of column " + std::to_string(layout.of(ColumnFamily::categorical)[j]) +
                                  " must be in [1, 2^24], got " + std::to_string(levels));
    layout.level_offsets.push_back(layout.level_offsets.back() + levels);
  }
  // statistics per column: Gaussian (x, x²), categorical one per level, gamma (x, log x), the others x
  Index offset = 0;
  for (int family = 0; family < kColumnFamilies; ++family) {
    layout.offsets[family] = offset;
    const Index count = static_cast<Index>(layout.columns[family].size());
    switch (static_cast<ColumnFamily>(family)) {
      case ColumnFamily::gaussian:
      case ColumnFamily::gamma:
        offset += 2 * count;
        break;
      case ColumnFamily::categorical:
        offset += layout.n_levels_total();
        break;
      default:
        offset += count;
    }
  }
  layout.n_statistics = offset;
  return layout;
}

void check_mixed_params(const MixedMixtureParams& p, const MixedLayout& layout, const MixedSpec& spec) {
  const Index K = p.weights.size();
  auto check_shape = [&](const char* name, const Eigen::MatrixXd& matrix, Index cols) {
    if (matrix.rows() != K || matrix.cols() != cols)
      throw std::invalid_argument(std::string(name) + " has shape (" + std::to_string(matrix.rows()) + ", " +
                                  std::to_string(matrix.cols()) + "), expected (" + std::to_string(K) + ", " +
                                  std::to_string(cols) + ")");
    if (!matrix.allFinite()) throw std::invalid_argument(std::string(name) + " must be finite");
  };
  if (K < 1) throw std::invalid_argument("a mixture needs at least one weight");
  if (!p.weights.allFinite() || (p.weights.array() < 0.0).any() || !(p.weights.sum() > 0.0))
    throw std::invalid_argument("the weights must be finite, non-negative and have a positive sum");
  check_shape("means", p.means, layout.n_features);
  check_shape("variances", p.variances, layout.count(ColumnFamily::gaussian));
  check_shape("shapes", p.shapes, layout.count(ColumnFamily::gamma));
  check_shape("probabilities", p.probabilities, layout.n_levels_total());
  if ((p.variances.array() <= 0.0).any()) throw std::invalid_argument("the variances must be positive");
  if ((p.shapes.array() <= 0.0).any()) throw std::invalid_argument("the shapes must be positive");
  if ((p.probabilities.array() < 0.0).any()) throw std::invalid_argument("the probabilities must be non-negative");
  for (Index j = 0; j + 1 < static_cast<Index>(layout.level_offsets.size()); ++j) {
    const Index begin = layout.level_offsets[j], end = layout.level_offsets[j + 1];
    for (Index k = 0; k < K; ++k)
      if (!(p.probabilities.row(k).segment(begin, end - begin).sum() > 0.0))
        throw std::invalid_argument("the probabilities of categorical column " +
                                    std::to_string(layout.of(ColumnFamily::categorical)[j]) +
                                    " must have a positive sum in every component");
  }
  auto check_means = [&](ColumnFamily family, double minimum, bool positive, const Eigen::VectorXd* maximum) {
    const std::vector<Index>& columns = layout.of(family);
    for (std::size_t j = 0; j < columns.size(); ++j)
      for (Index k = 0; k < K; ++k) {
        const double m = p.means(k, columns[j]);
        const double top = maximum ? (*maximum)(static_cast<Index>(j)) : std::numeric_limits<double>::infinity();
        if (m < minimum || (positive && !(m > 0.0)) || m > top)
          throw std::invalid_argument(std::string("the means of ") + column_family_name(family) + " column " +
                                      std::to_string(columns[j]) + " are out of range");
      }
  };
  const Eigen::VectorXd ones = Eigen::VectorXd::Ones(layout.count(ColumnFamily::bernoulli));
  check_means(ColumnFamily::bernoulli, 0.0, false, &ones);
  check_means(ColumnFamily::poisson, 0.0, false, nullptr);
  check_means(ColumnFamily::exponential, 0.0, true, nullptr);
  check_means(ColumnFamily::gamma, 0.0, true, nullptr);
  check_means(ColumnFamily::binomial, 0.0, false, &spec.n_trials);
}

namespace {

/// Whether `value` can be a value of `family` (the column's number of trials or levels in `limit`).
bool allowed(ColumnFamily family, double value, double limit, double tiny) {
  switch (family) {
    case ColumnFamily::gaussian:
      return std::isfinite(value);
    case ColumnFamily::bernoulli:
      return value == 0.0 || value == 1.0;
    case ColumnFamily::poisson:
      return value >= 0.0 && is_whole(value);
    case ColumnFamily::binomial:
      return value >= 0.0 && value <= limit && is_whole(value);
    case ColumnFamily::categorical:
      return value >= 0.0 && value < limit && is_whole(value);
    case ColumnFamily::exponential:
    case ColumnFamily::gamma:
      return std::isfinite(value) && value >= tiny;
  }
  return false;
}

/// (n_features) the number of trials or levels of each column (0 for the other families).
Eigen::VectorXd column_limits(const MixedSpec& spec, const MixedLayout& layout) {
  Eigen::VectorXd limits = Eigen::VectorXd::Zero(layout.n_features);
  const std::vector<Index>& binomial = layout.of(ColumnFamily::binomial);
  for (std::size_t j = 0; j < binomial.size(); ++j) limits(binomial[j]) = spec.n_trials(static_cast<Index>(j));
  const std::vector<Index>& categorical = layout.of(ColumnFamily::categorical);
  for (std::size_t j = 0; j < categorical.size(); ++j) limits(categorical[j]) = static_cast<double>(spec.n_levels[j]);
  return limits;
}

}  // namespace

template <typename T>
std::pair<Index, Index> first_bad_mixed_value(const DataRef<T>& data, const MixedSpec& spec,
                                              const Execution& execution) {
  const MixedLayout layout = mixed_layout(spec, data.cols());
  const Eigen::VectorXd limits = column_limits(spec, layout);
  // a subnormal float is read as its double, which is below DBL_MIN too, so positive columns refuse it
  // a positive column refuses subnormal values of T, which the passes may read as 0
  const double tiny = static_cast<double>(std::numeric_limits<T>::min());
  auto bad_column = [&](const auto& row) -> Index {
    for (Index d = 0; d < row.size(); ++d)
      if (!allowed(spec.families[static_cast<std::size_t>(d)], static_cast<double>(row(d)), limits(d), tiny)) return d;
    return -1;
  };
  const Index row = first_row_where(data, execution, [&](const auto& values) { return bad_column(values) >= 0; });
  if (row < 0) return {-1, -1};
  return {row, bad_column(data.row(row))};
}

Eigen::VectorXd mixed_gaussian_shift(const MixedMixtureParams& p, const MixedLayout& layout) {
  const std::vector<Index>& gaussian = layout.of(ColumnFamily::gaussian);
  Eigen::VectorXd shift(static_cast<Index>(gaussian.size()));
  const double total = p.weights.sum();
  for (std::size_t j = 0; j < gaussian.size(); ++j)
    shift(static_cast<Index>(j)) = p.weights.dot(p.means.col(gaussian[j])) / total;
  return shift;
}

template <typename T>
RowMatrix<T> mixed_statistics(const DataRef<T>& chunk, const MixedLayout& layout,
                              const Eigen::VectorXd& gaussian_shift) {
  const Index n = chunk.rows();
  RowMatrix<T> statistics = RowMatrix<T>::Zero(n, layout.n_statistics);  // (n, P)
  // Gaussian: x − c and (x − c)², the shift subtracted in double before rounding to T
  const std::vector<Index>& gaussian = layout.of(ColumnFamily::gaussian);
  const Index n_gaussian = static_cast<Index>(gaussian.size());
  for (Index j = 0; j < n_gaussian; ++j) {
    const double shift = gaussian_shift.size() ? gaussian_shift(j) : 0.0;
    for (Index row = 0; row < n; ++row) {
      const double centred = static_cast<double>(chunk(row, gaussian[static_cast<std::size_t>(j)])) - shift;
      statistics(row, j) = static_cast<T>(centred);
      statistics(row, n_gaussian + j) = static_cast<T>(centred * centred);
    }
  }
  auto copy_columns = [&](ColumnFamily family) {
    const std::vector<Index>& columns = layout.of(family);
    const Index offset = layout.offset(family), count = static_cast<Index>(columns.size());
    for (Index j = 0; j < count; ++j) {
      const Index d = columns[static_cast<std::size_t>(j)];
      statistics.col(offset + j) = chunk.col(d);
      if (family == ColumnFamily::gamma) statistics.col(offset + count + j) = chunk.col(d).array().log().matrix();
    }
  };
  for (ColumnFamily family : {ColumnFamily::bernoulli, ColumnFamily::poisson, ColumnFamily::binomial,
                              ColumnFamily::exponential, ColumnFamily::gamma})
    copy_columns(family);
  // categorical: one-hot codes, a gather per row; a code outside 0..L−1 (data that skipped the checks) sets none
  const std::vector<Index>& categorical = layout.of(ColumnFamily::categorical);
  const Index offset = layout.offset(ColumnFamily::categorical);
  for (std::size_t j = 0; j < categorical.size(); ++j) {
    const Index begin = layout.level_offsets[j], levels = layout.level_offsets[j + 1] - begin;
    for (Index row = 0; row < n; ++row) {
      const double code = static_cast<double>(chunk(row, categorical[j]));
      if (code >= 0.0 && code < static_cast<double>(levels) && code == std::floor(code))
        statistics(row, offset + begin + static_cast<Index>(code)) = T(1);
    }
  }
  return statistics;
}

template std::pair<Index, Index> first_bad_mixed_value<float>(const DataRef<float>&, const MixedSpec&,
                                                              const Execution&);
template std::pair<Index, Index> first_bad_mixed_value<double>(const DataRef<double>&, const MixedSpec&,
                                                               const Execution&);
template RowMatrix<float> mixed_statistics<float>(const DataRef<float>&, const MixedLayout&, const Eigen::VectorXd&);
template RowMatrix<double> mixed_statistics<double>(const DataRef<double>&, const MixedLayout&, const Eigen::VectorXd&);

}  // namespace entrosum
