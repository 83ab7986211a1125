#include "entrosum/io/model_io.hpp"

#include <stdexcept>
#include <type_traits>
#include <vector>

#include "entrosum/core/errors.hpp"
#include "entrosum/io/npz.hpp"

namespace entrosum {

namespace {

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

/// A (rows, cols) matrix from row-major values.
Eigen::MatrixXd as_matrix(const npz::Array& array, Index rows, Index cols) {
  return Eigen::Map<const RowMatrix<double>>(array.values.data(), rows, cols);
}

Eigen::VectorXd as_vector(const npz::Array& array) {
  return Eigen::Map<const Eigen::VectorXd>(array.values.data(), static_cast<Index>(array.values.size()));
}

/// The extent `axis` of the array `name`, which must have `ndim` dimensions.
std::int64_t extent(const npz::Archive& archive, const std::string& name, std::size_t ndim, std::size_t axis) {
  const npz::Array array = archive.array(name);
  if (array.ndim() != ndim)
    throw FormatError(archive.path() + ": the array '" + name + "' must have " + std::to_string(ndim) +
                      " dimension(s), got shape " + shape_text(array.shape) + " (corrupt file)");
  return array.shape[axis];
}

const json::Value& parameter(const json::Value& metadata, const std::string& name) {
  return metadata.at("params").at(name);
}

// ---- one reader per model class -------------------------------------------------------------------

SavedParams read_linear_gaussian(const npz::Archive& archive, const json::Value&, Index n_features, NoiseModel noise) {
  const std::int64_t D = n_features;
  const std::int64_t H = extent(archive, "components_", 2, 0);
  SavedLinearGaussian saved;
  saved.noise = noise;
  saved.params.mean = as_vector(shaped(archive, "mean_", {D}));
  saved.params.components = as_matrix(shaped(archive, "components_", {H, D}), H, D).transpose();  // (D, H) W
  if (noise == NoiseModel::isotropic) {
    // PPCA keeps σ² as a scalar
    saved.params.noise_variance = Eigen::VectorXd::Constant(D, shaped(archive, "noise_variance_", {}).values[0]);
  } else {
    saved.params.noise_variance = as_vector(shaped(archive, "noise_variance_", {D}));
  }
  return saved;
}

SavedParams read_ppca(const npz::Archive& archive, const json::Value& metadata, Index n_features) {
  return read_linear_gaussian(archive, metadata, n_features, NoiseModel::isotropic);
}

SavedParams read_factor_analysis(const npz::Archive& archive, const json::Value& metadata, Index n_features) {
  return read_linear_gaussian(archive, metadata, n_features, NoiseModel::diagonal);
}

SavedParams read_gaussian_mixture(const npz::Archive& archive, const json::Value& metadata, Index n_features) {
  const std::string& type = parameter(metadata, "covariance_type").as_string("params.covariance_type");
  const std::int64_t D = n_features;
  const std::int64_t K = extent(archive, "weights_", 1, 0);
  SavedGaussianMixture saved;
  GaussianMixtureParams& p = saved.params;
  p.weights = as_vector(shaped(archive, "weights_", {K}));
  p.means = as_matrix(shaped(archive, "means_", {K, D}), K, D);
  // The public shapes, stacked as GaussianMixtureParams keeps them (row-major (K, D, D) is (K·D, D)).
  auto stacked = [&](const std::string& name) -> Eigen::MatrixXd {
    if (type == "full") return as_matrix(shaped(archive, name, {K, D, D}), K * D, D);
    if (type == "tied") return as_matrix(shaped(archive, name, {D, D}), D, D);
    if (type == "diag") return as_matrix(shaped(archive, name, {K, D}), K, D);
    return as_matrix(shaped(archive, name, {K}), K, 1);
  };
  if (type == "full")
    p.covariance_type = CovarianceType::full;
  else if (type == "tied")
    p.covariance_type = CovarianceType::tied;
  else if (type == "diag")
    p.covariance_type = CovarianceType::diag;
  else if (type == "spherical")
    p.covariance_type = CovarianceType::spherical;
  else
    throw FormatError(archive.path() + ": unknown covariance_type '" + type + "'");
  p.covariances = stacked("covariances_");
  p.precision_cholesky = stacked("precisions_cholesky_");
  return saved;
}

template <typename Family>
SavedParams read_discrete_mixture(const npz::Archive& archive, const json::Value& metadata, Index n_features) {
  const std::int64_t D = n_features;
  const std::int64_t K = extent(archive, "weights_", 1, 0);
  SavedDiscreteMixture<Family> saved;
  saved.params.weights = as_vector(shaped(archive, "weights_", {K}));
  saved.params.means = as_matrix(shaped(archive, "means_", {K, D}), K, D);
  if constexpr (std::is_same_v<Family, BernoulliMixture>)
    saved.settings.alpha = parameter(metadata, "alpha").as_number("params.alpha");
  return saved;
}

SavedParams read_sparse_coding(const npz::Archive& archive, const json::Value& metadata, Index n_features) {
  const std::int64_t D = n_features;
  const std::int64_t H = extent(archive, "components_", 2, 0);
  SavedSparseCoding saved;
  saved.params.components = as_matrix(shaped(archive, "components_", {H, D}), H, D).transpose();  // (D, H) W
  saved.params.scales = as_vector(shaped(archive, "scales_", {H}));
  saved.params.noise_variance = shaped(archive, "noise_variance_", {}).values[0];
  const std::string& posterior = parameter(metadata, "posterior").as_string("params.posterior");
  if (posterior != "diag" && posterior != "full")
    throw FormatError(archive.path() + ": unknown posterior '" + posterior + "'");
  saved.form = posterior == "full" ? PosteriorForm::full : PosteriorForm::diagonal;
  saved.solver.tol = parameter(metadata, "e_step_tol").as_number("params.e_step_tol");
  saved.solver.max_iter = static_cast<int>(parameter(metadata, "e_step_max_iter").as_number("params.e_step_max_iter"));
  return saved;
}

/// The model classes this library reads, by the name the Python package saves them under. A new family
/// adds its SavedParams alternative, a reader here and a case in score_samples.
struct FamilyReader {
  const char* model;
  SavedParams (*read)(const npz::Archive&, const json::Value&, Index);
};

constexpr FamilyReader kReaders[] = {
    {"PPCA", read_ppca},
    {"FactorAnalysis", read_factor_analysis},
    {"GaussianMixture", read_gaussian_mixture},
    {"BernoulliMixture", read_discrete_mixture<BernoulliMixture>},
    {"PoissonMixture", read_discrete_mixture<PoissonMixture>},
    {"SparseCoding", read_sparse_coding},
};

template <typename Params>
Params expect_model(const SavedModel& saved, const std::string& path, const char* model) {
  if (saved.model != model) throw FormatError(path + " holds a " + saved.model + " model, not a " + model);
  return std::get<Params>(saved.params);
}

}  // namespace

SavedModel load_model(const std::string& path) {
  const npz::Archive archive(path);
  if (!archive.contains("metadata"))
    throw FormatError(path + " is not an entrosum model file: it has no 'metadata' entry");
  SavedModel saved;
  try {
    saved.metadata = json::parse(archive.bytes("metadata"));
  } catch (const FormatError& error) {
    throw FormatError(path + ": " + error.what());
  }
  const json::Value& metadata = saved.metadata;
  const json::Value* format = metadata.find("format");
  if (!format || format->type() != json::Value::Type::string || format->as_string() != kModelFormat)
    throw FormatError(path + " is not an entrosum model file: its metadata does not name the format '" +
                      std::string(kModelFormat) + "'");
  const json::Value* version = metadata.find("format_version");
  if (!version || version->type() != json::Value::Type::number || version->as_number() != kModelFormatVersion) {
    const std::string found = version && version->type() == json::Value::Type::number
                                  ? std::to_string(version->as_number())
                                  : std::string("missing");
    throw FormatError(path + " has model format version " + found + "; this library reads version " +
                      std::to_string(kModelFormatVersion));
  }
  try {
    saved.model = metadata.at("model").as_string("model");
    saved.dtype = metadata.at("dtype").as_string("dtype");
    saved.entrosum_version = metadata.at("entrosum_version").as_string("entrosum_version");
    saved.n_features = static_cast<Index>(metadata.at("n_features").as_number("n_features"));
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

SparseCodingParams load_sparse_coding(const std::string& path) {
  return expect_model<SavedSparseCoding>(load_model(path), path, "SparseCoding").params;
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
      return discrete_mixture_score<BernoulliMixture, T>(data, m.params, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedDiscreteMixture<PoissonMixture>& m) const {
      return discrete_mixture_score<PoissonMixture, T>(data, m.params, nullptr, execution);
    }
    Eigen::VectorXd operator()(const SavedSparseCoding&) const {
      throw std::invalid_argument(
          "sparse coding has no closed-form log-likelihood per sample; use score (the ES-ELBO)");
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
  return score_samples<T>(model, data, execution).mean();
}

template Eigen::VectorXd score_samples<float>(const SavedModel&, const DataRef<float>&, const Execution&);
template Eigen::VectorXd score_samples<double>(const SavedModel&, const DataRef<double>&, const Execution&);
template double score<float>(const SavedModel&, const DataRef<float>&, const Execution&);
template double score<double>(const SavedModel&, const DataRef<double>&, const Execution&);

}  // namespace entrosum
