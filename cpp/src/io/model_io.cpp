#include "entrosum/io/model_io.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "entrosum/core/errors.hpp"
#include "entrosum/io/npz.hpp"

namespace entrosum {

namespace {

using Json = nlohmann::ordered_json;

// ---- the metadata ---------------------------------------------------------------------------------

const char* type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return "an unknown value";
}

/// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, column 5: " prefix
/// (the byte position is given separately), in ASCII: the message quotes the text last read, which may be
/// invalid UTF-8 that Python could not decode, so bytes outside ASCII are written as \xHH.
std::string description(const nlohmann::json::exception& error) {
  std::string text = error.what();
  const std::size_t id_end = text.find("] ");
  if (text.compare(0, 1, "[") == 0 && id_end != std::string::npos) text.erase(0, id_end + 2);
  if (text.compare(0, 11, "parse error") == 0) {
    const std::size_t colon = text.find(": ");
    if (colon != std::string::npos) text.erase(0, colon + 2);
  }
  std::string ascii;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      ascii += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      ascii += "\\x";
      ascii += kHex[byte >> 4];
      ascii += kHex[byte & 0xF];
    }
  }
  return ascii;
}

/// The 1-based position of the first byte at which arrays and objects are open more than kMaxMetadataDepth
/// deep, or 0. Brackets inside strings are skipped as the JSON lexer skips them, so up to the first syntax
/// error (where nlohmann stops) the count is the depth of the document nlohmann builds.
std::size_t too_deep_at(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (in_string) {
      if (c == '\\')
        ++at;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxMetadataDepth) return at + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return 0;
}

/// The member `key` of `object`; a missing key, or a parent that is not an object, is a FormatError.
const Json& member(const Json& object, const std::string& key) {
  if (!object.is_object())
    throw FormatError("metadata: the parent of '" + key + "' must be an object, got " + type_name(object));
  const auto found = object.find(key);
  if (found == object.end()) throw FormatError("metadata: the entry '" + key + "' is missing");
  return *found;
}

/// The member `key` of `object`, or nullptr when absent (or when `object` is not an object).
const Json* find_member(const Json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

const std::string& as_string(const Json& value, const std::string& what) {
  if (!value.is_string()) throw FormatError("metadata: " + what + " must be a string, got " + type_name(value));
  return value.get_ref<const std::string&>();
}

double as_number(const Json& value, const std::string& what) {
  if (!value.is_number()) throw FormatError("metadata: " + what + " must be a number, got " + type_name(value));
  return value.get<double>();
}

// ---- the arrays -------------------------------------------------------------------------------------

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

/// The array `name`, which must have exactly `shape`.
npz::Array shaped(const npz::Archive& archive, const std::string& name, const std::vector<std::int64_t>& shape) {
  npz::Array array = archive.array(name);
  if (array.shape != shape)
    throw FormatError(archive.path() + ": the array '" + name + "' has shape " + shape_text(array.shape) +
                      ", expected " + shape_text(shape) + " (corrupt file)");
  return array;
}

/// The values of the array `name` must be finite and at least `minimum` (above it when `strict`), at most `maximum`:
/// a saved model's parameters are, and C++ users score with them without further checks.
void check_values(const npz::Archive& archive, const std::string& name, const npz::Array& array, double minimum,
                  double maximum = std::numeric_limits<double>::infinity(), bool strict = false) {
  for (const double value : array.values) {
    if (!std::isfinite(value) || value < minimum || (strict && value == minimum) || value > maximum)
      throw FormatError(archive.path() + ": the array '" + name + "' holds " + std::to_string(value) +
                        ", outside the range of its values (corrupt file)");
  }
}

/// The array `name` of exactly `shape`, with values checked as by check_values.
npz::Array checked(const npz::Archive& archive, const std::string& name, const std::vector<std::int64_t>& shape,
                   double minimum = -std::numeric_limits<double>::infinity(),
                   double maximum = std::numeric_limits<double>::infinity(), bool strict = false);

/// A (rows, cols) matrix from row-major values.
Eigen::MatrixXd as_matrix(const npz::Array& array, Index rows, Index cols) {
  return Eigen::Map<const RowMatrix<double>>(array.values.data(), rows, cols);
}

Eigen::VectorXd as_vector(const npz::Array& array) {
  return Eigen::Map<const Eigen::VectorXd>(array.values.data(), static_cast<Index>(array.values.size()));
}

npz::Array checked(const npz::Archive& archive, const std::string& name, const std::vector<std::int64_t>& shape,
                   double minimum, double maximum, bool strict) {
  npz::Array array = shaped(archive, name, shape);
  check_values(archive, name, array, minimum, maximum, strict);
  return array;
}

/// The extent `axis` of the array `name`, which must have `ndim` dimensions.
std::int64_t extent(const npz::Archive& archive, const std::string& name, std::size_t ndim, std::size_t axis) {
  const npz::Array array = archive.array(name);
  if (array.ndim() != ndim)
    throw FormatError(archive.path() + ": the array '" + name + "' must have " + std::to_string(ndim) +
                      " dimension(s), got shape " + shape_text(array.shape) + " (corrupt file)");
  return array.shape[axis];
}

const Json& parameter(const Json& metadata, const std::string& name) {
  return member(member(metadata, "params"), name);
}

// ---- one reader per model class -------------------------------------------------------------------

SavedParams read_linear_gaussian(const npz::Archive& archive, const Json&, Index n_features, NoiseModel noise) {
  const std::int64_t D = n_features;
  const std::int64_t H = extent(archive, "components_", 2, 0);
  SavedLinearGaussian saved;
  saved.noise = noise;
  saved.params.mean = as_vector(checked(archive, "mean_", {D}));
  saved.params.components = as_matrix(checked(archive, "components_", {H, D}), H, D).transpose();  // (D, H) W
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  if (noise == NoiseModel::isotropic) {
    // PPCA keeps σ² as a scalar
    saved.params.noise_variance =
        Eigen::VectorXd::Constant(D, checked(archive, "noise_variance_", {}, 0.0, kInfinity, true).values[0]);
  } else {
    saved.params.noise_variance = as_vector(checked(archive, "noise_variance_", {D}, 0.0, kInfinity, true));
  }
  return saved;
}

SavedParams read_ppca(const npz::Archive& archive, const Json& metadata, Index n_features) {
  return read_linear_gaussian(archive, metadata, n_features, NoiseModel::isotropic);
}

SavedParams read_factor_analysis(const npz::Archive& archive, const Json& metadata, Index n_features) {
  return read_linear_gaussian(archive, metadata, n_features, NoiseModel::diagonal);
}

SavedParams read_gaussian_mixture(const npz::Archive& archive, const Json& metadata, Index n_features) {
  const std::string& type = as_string(parameter(metadata, "covariance_type"), "params.covariance_type");
  const std::int64_t D = n_features;
  const std::int64_t K = extent(archive, "weights_", 1, 0);
  if (K < 1) throw FormatError(archive.path() + ": the array 'weights_' has no components (corrupt file)");
  SavedGaussianMixture saved;
  GaussianMixtureParams& p = saved.params;
  p.weights = as_vector(checked(archive, "weights_", {K}, 0.0));
  if (!(p.weights.sum() > 0.0)) throw FormatError(archive.path() + ": the weights sum to 0 (corrupt file)");
  p.means = as_matrix(checked(archive, "means_", {K, D}), K, D);
  // The public shapes, stacked as GaussianMixtureParams keeps them (row-major (K, D, D) is (K·D, D)).
  auto stacked = [&](const std::string& name) -> Eigen::MatrixXd {
    if (type == "full") return as_matrix(checked(archive, name, {K, D, D}), K * D, D);
    if (type == "tied") return as_matrix(checked(archive, name, {D, D}), D, D);
    if (type == "diag") return as_matrix(checked(archive, name, {K, D}), K, D);
    // the shared variances and their inverse square roots are positive
    constexpr double kInfinity = std::numeric_limits<double>::infinity();
    if (type == "tied_diag") return as_matrix(checked(archive, name, {D}, 0.0, kInfinity, true), 1, D);
    if (type == "tied_spherical") return as_matrix(checked(archive, name, {}, 0.0, kInfinity, true), 1, 1);
    return as_matrix(checked(archive, name, {K}), K, 1);
  };
  if (type == "full")
    p.covariance_type = CovarianceType::full;
  else if (type == "tied")
    p.covariance_type = CovarianceType::tied;
  else if (type == "diag")
    p.covariance_type = CovarianceType::diag;
  else if (type == "spherical")
    p.covariance_type = CovarianceType::spherical;
  else if (type == "tied_diag")
    p.covariance_type = CovarianceType::tied_diag;
  else if (type == "tied_spherical")
    p.covariance_type = CovarianceType::tied_spherical;
  else
    throw FormatError(archive.path() + ": unknown covariance_type '" + type + "'");
  p.covariances = stacked("covariances_");
  p.precision_cholesky = stacked("precisions_cholesky_");
  return saved;
}

template <typename Family>
SavedParams read_discrete_mixture(const npz::Archive& archive, const Json& metadata, Index n_features) {
  const std::int64_t D = n_features;
  const std::int64_t K = extent(archive, "weights_", 1, 0);
  if (K < 1) throw FormatError(archive.path() + ": the array 'weights_' has no components (corrupt file)");
  SavedDiscreteMixture<Family> saved;
  saved.params.weights = as_vector(checked(archive, "weights_", {K}, 0.0));
  if (!(saved.params.weights.sum() > 0.0)) throw FormatError(archive.path() + ": the weights sum to 0 (corrupt file)");
  // Bernoulli means and multinomial and categorical probabilities are at most 1
  constexpr bool categorical = std::is_same_v<Family, CategoricalMixture>;
  const bool bernoulli =
      std::is_same_v<Family, BernoulliMixture> || std::is_same_v<Family, MultinomialMixture> || categorical;
  std::int64_t width = D;  // the means' columns: the features, or a categorical mixture's levels
  if constexpr (categorical) {
    const Eigen::VectorXd n_levels = as_vector(checked(archive, "n_levels_", {D}, 1.0, 2147483647.0));
    saved.settings.n_levels = n_levels.template cast<Index>();
    try {
      if (!(n_levels.array() == n_levels.array().floor()).all())
        throw std::invalid_argument("the numbers of levels are not whole numbers");
      CategoricalMixture::check_settings(saved.settings, D);
    } catch (const std::invalid_argument& error) {
      throw FormatError(archive.path() + ": the array 'n_levels_' is invalid: " + error.what() + " (corrupt file)");
    }
    width = CategoricalMixture::expanded_width(saved.settings);
  }
  // the means of positive data are positive
  const bool positive = std::is_same_v<Family, ExponentialMixture> || std::is_same_v<Family, GammaMixture>;
  saved.params.means = as_matrix(
      checked(archive, "means_", {K, width}, 0.0, bernoulli ? 1.0 : std::numeric_limits<double>::infinity(), positive),
      K, width);
  if constexpr (std::is_same_v<Family, BernoulliMixture>)
    saved.settings.alpha = as_number(parameter(metadata, "alpha"), "params.alpha");
  if constexpr (std::is_same_v<Family, GammaMixture>)
    saved.params.shapes =
        as_matrix(checked(archive, "shapes_", {K, D}, 0.0, std::numeric_limits<double>::infinity(), true), K, D);
  if constexpr (std::is_same_v<Family, MultinomialMixture>) {
    // each component's probabilities sum to 1 (to the rounding of float32 parameters)
    for (Index k = 0; k < K; ++k)
      if (!(std::abs(saved.params.means.row(k).sum() - 1.0) <= 1e-4))
        throw FormatError(archive.path() + ": the probabilities in row " + std::to_string(k) +
                          " of 'means_' do not sum to 1 (corrupt file)");
  }
  if constexpr (categorical) {
    // each column's levels sum to 1 in every component
    for (Index k = 0; k < K; ++k) {
      Index offset = 0;
      for (Index d = 0; d < D; ++d) {
        const Index levels = saved.settings.n_levels(d);
        if (!(std::abs(saved.params.means.row(k).segment(offset, levels).sum() - 1.0) <= 1e-4))
          throw FormatError(archive.path() + ": the probabilities of column " + std::to_string(d) + " in row " +
                            std::to_string(k) + " of 'means_' do not sum to 1 (corrupt file)");
        offset += levels;
      }
    }
  }
  if constexpr (std::is_same_v<Family, BinomialMixture>) {
    // the numbers of trials: whole, at least 1, and no mean count above its column's
    saved.settings.n_trials = as_vector(checked(archive, "n_trials_", {D}, 1.0, 9007199254740992.0));
    try {
      BinomialMixture::check_settings(saved.settings, D);
    } catch (const std::invalid_argument& error) {
      throw FormatError(archive.path() + ": the array 'n_trials_' is invalid: " + error.what() + " (corrupt file)");
    }
    for (Index k = 0; k < K; ++k)
      for (Index d = 0; d < D; ++d)
        if (saved.params.means(k, d) > saved.settings.n_trials(d))
          throw FormatError(archive.path() + ": the array 'means_' holds a mean count above n_trials_[" +
                            std::to_string(d) + "] (corrupt file)");
  }
  return saved;
}

SavedParams read_sparse_coding(const npz::Archive& archive, const Json& metadata, Index n_features) {
  const std::int64_t D = n_features;
  const std::int64_t H = extent(archive, "components_", 2, 0);
  SavedSparseCoding saved;
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  saved.params.components = as_matrix(checked(archive, "components_", {H, D}), H, D).transpose();  // (D, H) W
  saved.params.scales = as_vector(checked(archive, "scales_", {H}, 0.0, kInfinity, true));
  saved.params.noise_variance = checked(archive, "noise_variance_", {}, 0.0, kInfinity, true).values[0];
  const std::string& posterior = as_string(parameter(metadata, "posterior"), "params.posterior");
  if (posterior != "diag" && posterior != "full")
    throw FormatError(archive.path() + ": unknown posterior '" + posterior + "'");
  saved.form = posterior == "full" ? PosteriorForm::full : PosteriorForm::diagonal;
  saved.solver.tol = as_number(parameter(metadata, "e_step_tol"), "params.e_step_tol");
  const double max_iter = as_number(parameter(metadata, "e_step_max_iter"), "params.e_step_max_iter");
  if (!(max_iter >= 1.0 && max_iter <= static_cast<double>(std::numeric_limits<int>::max())))
    throw FormatError(archive.path() + ": params.e_step_max_iter must be a positive integer of the int range");
  saved.solver.max_iter = static_cast<int>(max_iter);
  if (!(saved.solver.tol >= 0.0)) throw FormatError(archive.path() + ": params.e_step_tol must not be negative");
  if (H < 1) throw FormatError(archive.path() + ": the array 'components_' has no atoms (corrupt file)");
  return saved;
}

SavedParams read_linear_vae(const npz::Archive& archive, const Json&, Index n_features) {
  const std::int64_t D = n_features;
  const std::int64_t H = extent(archive, "components_", 2, 0);
  SavedLinearVae saved;
  LinearVaeParams& p = saved.params;
  p.encoder_weights = as_matrix(shaped(archive, "encoder_weights_", {H, D}), H, D);
  p.encoder_bias = as_vector(shaped(archive, "encoder_bias_", {H}));
  p.encoder_variance = as_vector(shaped(archive, "encoder_variances_", {H}));
  p.decoder_weights = as_matrix(shaped(archive, "components_", {H, D}), H, D).transpose();  // (D, H) W
  p.decoder_bias = as_vector(shaped(archive, "mean_", {D}));
  p.noise_variance = shaped(archive, "noise_variance_", {}).values[0];
  return saved;
}

/// How a binary-latent model infers the posterior of new data: its posterior kind, S, proposals and rounds, and
/// the fixed seed the Python estimator uses (entrosum.binary.base.INFERENCE_SEED).
SavedBinaryInference read_binary_inference(const npz::Archive& archive, const Json& metadata, Index n_components) {
  SavedBinaryInference inference;
  const std::string& posterior = as_string(parameter(metadata, "posterior"), "params.posterior");
  if (posterior == "exact") {
    inference.posterior.kind = BinaryPosteriorKind::exact;
  } else if (posterior == "truncated") {
    inference.posterior.kind = BinaryPosteriorKind::truncated;
  } else {
    throw FormatError(archive.path() + ": unknown posterior '" + posterior + "'");
  }
  inference.posterior.n_states = static_cast<Index>(as_number(parameter(metadata, "n_states"), "params.n_states"));
  inference.rounds = static_cast<int>(as_number(parameter(metadata, "inference_rounds"), "params.inference_rounds"));
  // a sequence parameter is saved as the array member params/<name> (its metadata entry is null)
  if (archive.contains("params/proposals")) {
    const auto proposals = shaped(archive, "params/proposals", {3});
    for (double value : proposals.values)
      if (!(value >= 0.0) || value != std::floor(value))
        throw FormatError(archive.path() + ": params/proposals must hold three whole numbers >= 0");
    inference.posterior.bit_flips = static_cast<Index>(proposals.values[0]);
    inference.posterior.prior_draws = static_cast<Index>(proposals.values[1]);
    inference.posterior.crossovers = static_cast<Index>(proposals.values[2]);
  }
  try {
    check_binary_posterior(inference.posterior, n_components);
  } catch (const std::invalid_argument& error) {
    throw FormatError(archive.path() + ": " + error.what());
  }
  if (inference.rounds < 1) throw FormatError(archive.path() + ": params.inference_rounds must be at least 1");
  return inference;
}

/// Wᵀ (H, D) as saved, W (D, H) here, with b and π.
template <typename Params>
void read_binary_params(const npz::Archive& archive, Index n_features, Params& params) {
  const std::int64_t D = n_features;
  const std::int64_t H = extent(archive, "components_", 2, 0);
  params.components = as_matrix(shaped(archive, "components_", {H, D}), H, D).transpose();
  params.offset = as_vector(shaped(archive, "offset_", {D}));
  params.prior = as_vector(shaped(archive, "prior_", {H}));
  if (!((params.prior.array() > 0.0) && (params.prior.array() < 1.0)).all())
    throw FormatError(archive.path() + ": prior_ must lie strictly between 0 and 1");
}

SavedParams read_binary_sparse_coding(const npz::Archive& archive, const Json& metadata, Index n_features) {
  SavedBinarySparseCoding saved;
  read_binary_params(archive, n_features, saved.params);
  saved.params.noise_variance = shaped(archive, "noise_variance_", {}).values[0];
  if (!(saved.params.noise_variance > 0.0)) throw FormatError(archive.path() + ": noise_variance_ must be positive");
  saved.inference = read_binary_inference(archive, metadata, saved.params.components.cols());
  return saved;
}

SavedParams read_sigmoid_belief_net(const npz::Archive& archive, const Json& metadata, Index n_features) {
  SavedSigmoidBeliefNet saved;
  read_binary_params(archive, n_features, saved.params);
  saved.inference = read_binary_inference(archive, metadata, saved.params.components.cols());
  return saved;
}

SavedParams read_mixed_mixture(const npz::Archive& archive, const Json& metadata, Index n_features) {
  const std::int64_t D = n_features;
  const std::int64_t K = extent(archive, "weights_", 1, 0);
  if (K < 1) throw FormatError(archive.path() + ": the array 'weights_' has no components (corrupt file)");
  SavedMixedMixture saved;
  // the family of each column, saved as a list of names among the fitted attributes
  const Json& families = member(member(member(metadata, "fitted"), "column_families_"), "value");
  if (!families.is_array() || static_cast<std::int64_t>(families.size()) != D)
    throw FormatError(archive.path() + ": the metadata's column_families_ must name one family per feature");
  for (const Json& name : families) {
    const std::string& text = as_string(name, "a column family");
    int code = -1;
    for (int family = 0; family < kColumnFamilies; ++family)
      if (text == column_family_name(static_cast<ColumnFamily>(family))) code = family;
    if (code < 0) throw FormatError(archive.path() + ": unknown column family '" + text + "' (corrupt file)");
    saved.spec.families.push_back(static_cast<ColumnFamily>(code));
  }
  auto count = [&](ColumnFamily family) {
    return static_cast<std::int64_t>(std::count(saved.spec.families.begin(), saved.spec.families.end(), family));
  };
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  saved.spec.n_trials =
      as_vector(checked(archive, "n_trials_", {count(ColumnFamily::binomial)}, 1.0, 9007199254740992.0));
  const npz::Array levels = checked(archive, "n_levels_", {count(ColumnFamily::categorical)}, 1.0, 16777216.0);
  std::int64_t total_levels = 0;
  for (const double value : levels.values) {
    saved.spec.n_levels.push_back(static_cast<Index>(value));
    total_levels += static_cast<std::int64_t>(value);
  }
  MixedMixtureParams& p = saved.params;
  p.weights = as_vector(checked(archive, "weights_", {K}, 0.0));
  p.means = as_matrix(checked(archive, "means_", {K, D}), K, D);
  const std::int64_t n_gaussian = count(ColumnFamily::gaussian), n_gamma = count(ColumnFamily::gamma);
  p.variances = as_matrix(checked(archive, "variances_", {K, n_gaussian}, 0.0, kInfinity, true), K, n_gaussian);
  p.shapes = as_matrix(checked(archive, "shapes_", {K, n_gamma}, 0.0, kInfinity, true), K, n_gamma);
  p.probabilities = as_matrix(checked(archive, "probabilities_", {K, total_levels}, 0.0), K, total_levels);
  try {
    check_mixed_params(p, mixed_layout(saved.spec, n_features), saved.spec);
  } catch (const std::invalid_argument& error) {
    throw FormatError(archive.path() + ": the mixed mixture's parameters are invalid: " + error.what() +
                      " (corrupt file)");
  }
  return saved;
}

/// The model classes this library reads, by the name the Python package saves them under. A new family
/// adds its SavedParams alternative, a reader here and a case in score_samples.
struct FamilyReader {
  const char* model;
  SavedParams (*read)(const npz::Archive&, const Json&, Index);
};

constexpr FamilyReader kReaders[] = {
    {"PPCA", read_ppca},
    {"FactorAnalysis", read_factor_analysis},
    {"GaussianMixture", read_gaussian_mixture},
    {"BernoulliMixture", read_discrete_mixture<BernoulliMixture>},
    {"PoissonMixture", read_discrete_mixture<PoissonMixture>},
    {"BinomialMixture", read_discrete_mixture<BinomialMixture>},
    {"ExponentialMixture", read_discrete_mixture<ExponentialMixture>},
    {"GammaMixture", read_discrete_mixture<GammaMixture>},
    {"MixedMixture", read_mixed_mixture},
    {"MultinomialMixture", read_discrete_mixture<MultinomialMixture>},
    {"CategoricalMixture", read_discrete_mixture<CategoricalMixture>},
    {"SparseCoding", read_sparse_coding},
    {"LinearVAE", read_linear_vae},
    {"BinarySparseCoding", read_binary_sparse_coding},
    {"SigmoidBeliefNet", read_sigmoid_belief_net},
};

template <typename Params>
Params expect_model(const SavedModel& saved, const std::string& path, const char* model) {
  if (saved.model != model) throw FormatError(path + " holds a " + saved.model + " model, not a " + model);
  return std::get<Params>(saved.params);
}

}  // namespace

nlohmann::ordered_json parse_metadata(const std::string& text) {
  // The depth first, in one pass without recursion: a hostile file must not build a document so deep that
  // copying, destroying or converting it exhausts the stack.
  if (const std::size_t at = too_deep_at(text))
    throw FormatError("metadata: arrays and objects nested more than " + std::to_string(kMaxMetadataDepth) +
                      " deep at byte " + std::to_string(at) + " (corrupt JSON)");
  // nlohmann skips a byte order mark; Python's reader (json.loads of the decoded text) refuses it, and so do we.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0)
    throw FormatError("metadata: a byte order mark, which JSON text must not begin with, at byte 1 (corrupt JSON)");
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    throw FormatError("metadata: " + description(error) + " at byte " + std::to_string(error.byte) + " (corrupt JSON)");
  } catch (const nlohmann::json::exception& error) {  // e.g. out_of_range: a number beyond double's range
    throw FormatError("metadata: " + description(error) + " (corrupt JSON)");
  }
}

SavedModel load_model(const std::string& path) {
  const npz::Archive archive(path);
  if (!archive.contains("metadata"))
    throw FormatError(path + " is not an entrosum model file: it has no 'metadata' entry");
  SavedModel saved;
  try {
    saved.metadata = parse_metadata(archive.bytes("metadata"));
  } catch (const FormatError& error) {
    throw FormatError(path + ": " + error.what());
  }
  const Json& metadata = saved.metadata;
  const Json* format = find_member(metadata, "format");
  if (!format || !format->is_string() || format->get_ref<const std::string&>() != kModelFormat)
    throw FormatError(path + " is not an entrosum model file: its metadata does not name the format '" +
                      std::string(kModelFormat) + "'");
  const Json* version = find_member(metadata, "format_version");
  if (!version || !version->is_number() || version->get<double>() != kModelFormatVersion) {
    const std::string found =
        version && version->is_number() ? std::to_string(version->get<double>()) : std::string("missing");
    throw FormatError(path + " has model format version " + found + "; this library reads version " +
                      std::to_string(kModelFormatVersion));
  }
  try {
    saved.model = as_string(member(metadata, "model"), "model");
    saved.dtype = as_string(member(metadata, "dtype"), "dtype");
    saved.entrosum_version = as_string(member(metadata, "entrosum_version"), "entrosum_version");
    const double n_features = as_number(member(metadata, "n_features"), "n_features");
    // a double outside Index's range would make the conversion undefined
    if (!(n_features >= 1.0 && n_features <= static_cast<double>(std::numeric_limits<std::int32_t>::max())))
      throw FormatError("metadata: n_features must be a positive integer, got " + std::to_string(n_features));
    saved.n_features = static_cast<Index>(n_features);
  } catch (const FormatError& error) {
    throw FormatError(path + ": " + error.what());
  }
  if (saved.dtype != "float32" && saved.dtype != "float64")
    throw FormatError(path + ": unsupported model dtype '" + saved.dtype + "'");
  if (saved.n_features < 1) throw FormatError(path + ": the metadata gives no positive n_features");
  for (const FamilyReader& reader : kReaders) {
    if (saved.model == reader.model) {
      try {
        saved.params = reader.read(archive, metadata, saved.n_features);
      } catch (const FormatError& error) {
        const std::string message = error.what();
        if (message.compare(0, path.size(), path) == 0) throw;
        throw FormatError(path + ": " + message);
      }
      return saved;
    }
  }
  throw FormatError(path + " holds a model of class '" + saved.model + "', which this library does not read");
}

GaussianMixtureParams load_gaussian_mixture(const std::string& path) {
  return expect_model<SavedGaussianMixture>(load_model(path), path, "GaussianMixture").params;
}

LinearGaussianParams load_ppca(const std::string& path) {
  return expect_model<SavedLinearGaussian>(load_model(path), path, "PPCA").params;
}

LinearGaussianParams load_factor_analysis(const std::string& path) {
  return expect_model<SavedLinearGaussian>(load_model(path), path, "FactorAnalysis").params;
}

DiscreteMixtureParams load_bernoulli_mixture(const std::string& path) {
  return expect_model<SavedDiscreteMixture<BernoulliMixture>>(load_model(path), path, "BernoulliMixture").params;
}

DiscreteMixtureParams load_poisson_mixture(const std::string& path) {
  return expect_model<SavedDiscreteMixture<PoissonMixture>>(load_model(path), path, "PoissonMixture").params;
}

std::pair<DiscreteMixtureParams, Eigen::VectorXd> load_binomial_mixture(const std::string& path) {
  const auto saved = expect_model<SavedDiscreteMixture<BinomialMixture>>(load_model(path), path, "BinomialMixture");
  return {saved.params, saved.settings.n_trials};
}

DiscreteMixtureParams load_exponential_mixture(const std::string& path) {
  return expect_model<SavedDiscreteMixture<ExponentialMixture>>(load_model(path), path, "ExponentialMixture").params;
}

DiscreteMixtureParams load_gamma_mixture(const std::string& path) {
  return expect_model<SavedDiscreteMixture<GammaMixture>>(load_model(path), path, "GammaMixture").params;
}

std::pair<MixedMixtureParams, MixedSpec> load_mixed_mixture(const std::string& path) {
  const auto saved = expect_model<SavedMixedMixture>(load_model(path), path, "MixedMixture");
  return {saved.params, saved.spec};
}

std::pair<DiscreteMixtureParams, Eigen::Matrix<Index, Eigen::Dynamic, 1>> load_categorical_mixture(
    const std::string& path) {
  const auto saved =
      expect_model<SavedDiscreteMixture<CategoricalMixture>>(load_model(path), path, "CategoricalMixture");
  return {saved.params, saved.settings.n_levels};
}

DiscreteMixtureParams load_multinomial_mixture(const std::string& path) {
  return expect_model<SavedDiscreteMixture<MultinomialMixture>>(load_model(path), path, "MultinomialMixture").params;
}

SparseCodingParams load_sparse_coding(const std::string& path) {
  return expect_model<SavedSparseCoding>(load_model(path), path, "SparseCoding").params;
}

LinearVaeParams load_linear_vae(const std::string& path) {
  return expect_model<SavedLinearVae>(load_model(path), path, "LinearVAE").params;
}

BinarySparseCodingParams load_binary_sparse_coding(const std::string& path) {
  return expect_model<SavedBinarySparseCoding>(load_model(path), path, "BinarySparseCoding").params;
}

SigmoidBeliefNetParams load_sigmoid_belief_net(const std::string& path) {
  return expect_model<SavedSigmoidBeliefNet>(load_model(path), path, "SigmoidBeliefNet").params;
}

namespace {

void check_features(const SavedModel& model, Index n_features) {
  if (n_features != model.n_features)
    throw std::invalid_argument("the data have " + std::to_string(n_features) + " features; the " + model.model +
                                " model was fitted with " + std::to_string(model.n_features));
}

}  // namespace

template <typename T>
Eigen::VectorXd score_samples(const SavedModel& model, const DataRef<T>& data, const Execution& execution) {
  check_features(model, data.cols());
  struct Score {
    const DataRef<T>& data;
    const Execution& execution;
    Eigen::VectorXd operator()(const SavedLinearGaussian& m) const {
      return linear_gaussian_log_likelihood<T>(data, m.params, execution);
    }
    Eigen::VectorXd operator()(const SavedGaussianMixture& m) const {
      return gaussian_mixture_score<T>(data, m.params, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<BernoulliMixture>& m) const {
      return discrete_mixture_score<BernoulliMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<PoissonMixture>& m) const {
      return discrete_mixture_score<PoissonMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<BinomialMixture>& m) const {
      return discrete_mixture_score<BinomialMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<ExponentialMixture>& m) const {
      return discrete_mixture_score<ExponentialMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<GammaMixture>& m) const {
      return discrete_mixture_score<GammaMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedMixedMixture& m) const {
      // the values must suit their columns' families (a code past its levels would index past them)
      const auto [row, column] = first_bad_mixed_value<T>(data, m.spec, execution);
      if (row >= 0)
        throw std::invalid_argument("row " + std::to_string(row) + " holds a value column " + std::to_string(column) +
                                    " (" + column_family_name(m.spec.families[static_cast<std::size_t>(column)]) +
                                    ") cannot model");
      return mixed_mixture_score<T>(data, m.params, m.spec, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<CategoricalMixture>& m) const {
      return discrete_mixture_score<CategoricalMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<MultinomialMixture>& m) const {
      return discrete_mixture_score<MultinomialMixture, T>(data, m.params, m.settings, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedLinearVae& m) const {
      return linear_vae_elbo_samples<T>(data, m.params, execution);
    }
    Eigen::VectorXd operator()(const SavedSparseCoding&) const {
      throw std::invalid_argument(
          "sparse coding has no closed-form log-likelihood per sample; use score (the ES-ELBO)");
    }
    Eigen::VectorXd operator()(const SavedBinarySparseCoding&) const { return binary(); }
    Eigen::VectorXd operator()(const SavedSigmoidBeliefNet&) const { return binary(); }
    static Eigen::VectorXd binary() {
      throw std::invalid_argument(
          "binary-latent models give no log-likelihood per sample; use score (the free energy)");
    }
  };
  return std::visit(Score{data, execution}, model.params);
}

template <typename T>
double score(const SavedModel& model, const DataRef<T>& data, const Execution& execution) {
  check_features(model, data.cols());
  if (const auto* sparse = std::get_if<SavedSparseCoding>(&model.params)) {
    // The ES-ELBO of the posteriors under Θ, with λ*, σ²* optimal for them (SparseCoding.score).
    const SparseCodingPosterior<T> posterior =
        sparse_coding_posterior<T>(data, sparse->params, sparse->form, sparse->solver, execution, false);
    return sparse_coding_es_elbo_terms(posterior.stats, sparse->params.components).elbo;
  }
  // Binary latents: the free energy per sample after the posterior's own E-step (with the fixed inference seed).
  if (const auto* bsc = std::get_if<SavedBinarySparseCoding>(&model.params)) {
    const BinarySparseCodingStats stats = binary_sparse_coding_infer<T>(
        data, bsc->params, bsc->inference.posterior, bsc->inference.rounds, execution, BinaryPosteriorOutput<T>{});
    return stats.log_joint_sum / stats.weight;
  }
  if (const auto* sbn = std::get_if<SavedSigmoidBeliefNet>(&model.params)) {
    const SigmoidBeliefNetStats stats = sigmoid_belief_net_infer<T>(
        data, sbn->params, sbn->inference.posterior, sbn->inference.rounds, execution, BinaryPosteriorOutput<T>{});
    return stats.log_joint_sum / stats.weight;
  }
  return score_samples<T>(model, data, execution).mean();
}

template Eigen::VectorXd score_samples<float>(const SavedModel&, const DataRef<float>&, const Execution&);
template Eigen::VectorXd score_samples<double>(const SavedModel&, const DataRef<double>&, const Execution&);
template double score<float>(const SavedModel&, const DataRef<float>&, const Execution&);
template double score<double>(const SavedModel&, const DataRef<double>&, const Execution&);

}  // namespace entrosum
