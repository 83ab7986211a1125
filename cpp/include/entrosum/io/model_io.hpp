// Models saved by the Python package (estimator.save(path); the format is in docs/model_format.md),
// read back as the C++ parameters of each family. The archive is parsed by npz.hpp and its metadata by
// nlohmann-json (parse_metadata); the metadata names the model class, which selects the family's reader.
#pragma once

#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <variant>

#include "entrosum/binary/binary_sparse_coding.hpp"
#include "entrosum/binary/sigmoid_belief_net.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/linear/linear_gaussian.hpp"
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/binomial_mixture.hpp"
#include "entrosum/mixtures/categorical_mixture.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "entrosum/mixtures/exponential_mixture.hpp"
#include "entrosum/mixtures/gamma_mixture.hpp"
#include "entrosum/mixtures/gaussian_mixture.hpp"
#include "entrosum/mixtures/mixed_mixture.hpp"
#include "entrosum/mixtures/multinomial_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"
#include "entrosum/sparse/sparse_coding.hpp"
#include "entrosum/vae/linear_vae.hpp"

namespace entrosum {

/// The format name and the version this library reads (and the Python package writes).
inline constexpr const char* kModelFormat = "entrosum-model";
inline constexpr int kModelFormatVersion = 1;

/// The deepest nesting of arrays and objects that metadata may have. nlohmann's parser keeps its own stack,
/// but copying, comparing or printing a document, and converting it to Python objects, recurse.
inline constexpr int kMaxMetadataDepth = 64;

/// PPCA (isotropic noise) or factor analysis (diagonal noise).
struct SavedLinearGaussian {
  NoiseModel noise = NoiseModel::diagonal;
  LinearGaussianParams params;
};

struct SavedGaussianMixture {
  GaussianMixtureParams params;
};

/// An exponential-family mixture: `Family` is BernoulliMixture, PoissonMixture, BinomialMixture (its settings hold
/// the numbers of trials), ExponentialMixture, GammaMixture (its params hold the shapes), MultinomialMixture (means
/// hold probabilities, each row summing to 1) or CategoricalMixture (its settings hold the numbers of levels, its
/// means the (K, Σ_d L_d) probabilities).
template <typename Family>
struct SavedDiscreteMixture {
  DiscreteMixtureParams params;
  typename Family::Settings settings;
};

/// Laplace sparse coding: Θ = (W, λ, σ²) and how its posteriors are inferred.
struct SavedSparseCoding {
  SparseCodingParams params;
  PosteriorForm form = PosteriorForm::diagonal;
  PosteriorSolverOptions solver;
};

/// The linear VAE: encoder (V, c, τ²) and decoder (W, b, σ²).
struct SavedLinearVae {
  LinearVaeParams params;
};

/// Binary latents: Θ and how the posterior of new data is inferred (BinaryLatentModel in Python).
struct SavedBinaryInference {
  BinaryPosteriorOptions posterior;
  int rounds = 20;
};
struct SavedBinarySparseCoding {
  BinarySparseCodingParams params;
  SavedBinaryInference inference;
};
struct SavedSigmoidBeliefNet {
  SigmoidBeliefNetParams params;
  SavedBinaryInference inference;
};

/// A mixed mixture: the parameters and each column's family with the binomial trials and categorical levels.
struct SavedMixedMixture {
  MixedMixtureParams params;
  MixedSpec spec;
};

using SavedParams =
    std::variant<SavedLinearGaussian, SavedGaussianMixture, SavedDiscreteMixture<BernoulliMixture>,
                 SavedDiscreteMixture<PoissonMixture>, SavedDiscreteMixture<BinomialMixture>,
                 SavedDiscreteMixture<ExponentialMixture>, SavedDiscreteMixture<GammaMixture>,
                 SavedDiscreteMixture<MultinomialMixture>, SavedDiscreteMixture<CategoricalMixture>, SavedMixedMixture,
                 SavedSparseCoding, SavedLinearVae, SavedBinarySparseCoding, SavedSigmoidBeliefNet>;

/// A saved model: what the metadata says about it and its parameters (in double, converted from the
/// saved dtype exactly as the Python estimator converts them to score).
struct SavedModel {
  /// The Python class, e.g. "GaussianMixture", "PPCA".
  std::string model;
  /// "float32" or "float64": the precision the model was fitted in.
  std::string dtype;
  std::string entrosum_version;
  Index n_features = 0;
  /// The whole metadata document (constructor parameters, monitor summary, ...), keys in document order.
  nlohmann::ordered_json metadata;
  SavedParams params;
};

/// Reads a saved model. A file that is not an entrosum model, is truncated or corrupt (CRC-32, JSON,
/// shapes), has compressed members, another format version or an unknown model class raises FormatError.
SavedModel load_model(const std::string& path);

/// Parses metadata text (JSON, RFC 8259). Malformed text, or arrays and objects nested more than
/// kMaxMetadataDepth deep, raise FormatError giving the byte position; no nlohmann exception escapes.
nlohmann::ordered_json parse_metadata(const std::string& text);

/// The parameters of a file that must hold the named model; another model is a FormatError.
GaussianMixtureParams load_gaussian_mixture(const std::string& path);
LinearGaussianParams load_ppca(const std::string& path);
LinearGaussianParams load_factor_analysis(const std::string& path);
DiscreteMixtureParams load_bernoulli_mixture(const std::string& path);
DiscreteMixtureParams load_poisson_mixture(const std::string& path);
/// A binomial mixture's parameters and its numbers of trials.
std::pair<DiscreteMixtureParams, Eigen::VectorXd> load_binomial_mixture(const std::string& path);
DiscreteMixtureParams load_exponential_mixture(const std::string& path);
/// A gamma mixture's parameters: means m = k/β and shapes k.
DiscreteMixtureParams load_gamma_mixture(const std::string& path);
/// A mixed mixture's parameters and the families of its columns.
std::pair<MixedMixtureParams, MixedSpec> load_mixed_mixture(const std::string& path);
/// A categorical mixture's parameters (means: the (K, Σ_d L_d) probabilities) and its numbers of levels.
std::pair<DiscreteMixtureParams, Eigen::Matrix<Index, Eigen::Dynamic, 1>> load_categorical_mixture(
    const std::string& path);
/// A multinomial mixture's parameters: the means are the probabilities p_kl.
DiscreteMixtureParams load_multinomial_mixture(const std::string& path);

SparseCodingParams load_sparse_coding(const std::string& path);
LinearVaeParams load_linear_vae(const std::string& path);
BinarySparseCodingParams load_binary_sparse_coding(const std::string& path);
SigmoidBeliefNetParams load_sigmoid_belief_net(const std::string& path);

/// (n_samples) log p(x_n | Θ) under a loaded model, computed as the Python estimator's score_samples (for the
/// linear VAE: each sample's closed-form ELBO).
/// Sparse coding has no closed-form log-likelihood, nor have binary latents with truncated posteriors (and
/// with exact ones their score is it): std::invalid_argument (use score).
template <typename T>
Eigen::VectorXd score_samples(const SavedModel& model, const DataRef<T>& data, const Execution& execution);

/// The Python estimator's score: the mean log-likelihood per sample, or for sparse coding the ES-ELBO per
/// sample of the posteriors inferred with the saved parameters, or for binary latents the free energy per sample
/// after their own E-step (the mean log-likelihood for exact posteriors).
template <typename T>
double score(const SavedModel& model, const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
