// Uses the installed entrosum library as any C++ project would, for tests/test_cpp_consumer.py:
//
// entrosum_consumer DATA N_SAMPLES N_FEATURES N_COMPONENTS
//   fits PPCA in closed form and by EM and prints the ELBO and the entropy sum of each fit;
// entrosum_consumer score MODEL DATA N_SAMPLES N_FEATURES
//   loads a model saved from Python (estimator.save) and prints its class and each row's log-likelihood.
//
//   DATA  raw little-endian float64 values, row-major (n_samples, n_features)
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <variant>

#include <entrosum/entrosum.hpp>

namespace {

/// (n_samples, n_features) the data read from a raw float64 file of exactly that size.
entrosum::RowMatrix<double> read_data(const std::string& path, entrosum::Index n_samples, entrosum::Index n_features) {
  entrosum::RowMatrix<double> data(n_samples, n_features);
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw std::runtime_error("cannot open " + path);
  const auto expected_bytes = static_cast<std::streamoff>(data.size() * sizeof(double));
  if (file.tellg() != expected_bytes)
    throw std::runtime_error(path + " does not hold " + std::to_string(data.size()) + " float64 values");
  file.seekg(0);
  file.read(reinterpret_cast<char*>(data.data()), expected_bytes);
  if (!file) throw std::runtime_error("cannot read " + path);
  return data;
}

void print_fit(const char* name, const entrosum::LinearGaussianFit& fit) {
  const entrosum::IterationRecord& last = fit.monitor.history().back();
  std::printf("%s elbo=%.17g entropy_sum=%.17g gap=%.17g iterations=%d stop=%s noise_variance=%.17g\n", name,
              last.terms.elbo, last.entropy_sum, last.gap, last.iteration,
              entrosum::to_string(fit.monitor.stop_reason()), fit.params.noise_variance(0));
}

/// Loads a saved model and prints its class, dtype, score and (except for sparse coding, which has no
/// closed-form likelihood) log p(x_n) for every row of the data.
int score_saved_model(char** argv) {
  const entrosum::SavedModel model = entrosum::load_model(argv[2]);
  const entrosum::RowMatrix<double> data = read_data(argv[3], std::stoll(argv[4]), std::stoll(argv[5]));
  entrosum::Execution execution;
  execution.n_threads = 2;
  std::printf("model=%s dtype=%s\n", model.model.c_str(), model.dtype.c_str());
  std::printf("score=%.17g\n", entrosum::score<double>(model, data, execution));
  if (!std::holds_alternative<entrosum::SavedSparseCoding>(model.params)) {
    const Eigen::VectorXd log_likelihood = entrosum::score_samples<double>(model, data, execution);
    for (Eigen::Index n = 0; n < log_likelihood.size(); ++n) std::printf("%.17g\n", log_likelihood(n));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "score") {
    try {
      return score_saved_model(argv);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "error: %s\n", error.what());
      return 1;
    }
  }
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DATA N_SAMPLES N_FEATURES N_COMPONENTS\n", argv[0]);
    return 2;
  }
  try {
    const entrosum::Index n_samples = std::stoll(argv[2]);
    const entrosum::Index n_features = std::stoll(argv[3]);
    const entrosum::Index n_components = std::stoll(argv[4]);
    const entrosum::RowMatrix<double> data = read_data(argv[1], n_samples, n_features);

    entrosum::Execution execution;
    execution.n_threads = 2;

    std::printf("version=%s\n", ENTROSUM_VERSION_STRING);

    // Tipping & Bishop's maximum-likelihood solution.
    print_fit("closed_form", entrosum::fit_ppca_closed_form<double>(data, n_components, execution));

    // EM from a fixed start: W a Hilbert block (full column rank), Ψ = I; stopped only by the
    // gap F − S, which vanishes at a fixed point of EM.
    entrosum::LinearGaussianParams initial;
    initial.components.resize(n_features, n_components);  // (n_features, n_components)
    for (entrosum::Index i = 0; i < n_features; ++i)
      for (entrosum::Index j = 0; j < n_components; ++j) initial.components(i, j) = 1.0 / double(i + j + 1);
    initial.noise_variance = Eigen::VectorXd::Ones(n_features);
    entrosum::LinearGaussianOptions options;
    options.noise = entrosum::NoiseModel::isotropic;
    options.precompute = true;
    options.stop.tol = -1.0;
    options.stop.gap_tol = 1e-10;
    options.stop.max_iter = 5000;
    options.execution = execution;
    print_fit("em", entrosum::fit_linear_gaussian<double>(data, initial, options));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
  return 0;
}
