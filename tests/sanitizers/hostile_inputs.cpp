// The C++ side of the sanitizer run (tests/sanitizers/run.sh, issue 13): the readers and the kernels on hostile and
// extreme input, built with AddressSanitizer, UndefinedBehaviorSanitizer and Eigen's assertions, so that a read out
// of bounds, an overflow or a failed Eigen assertion aborts the run.
//
//   hostile_inputs CORPUS_DIRECTORY
//
// 1. every file of the directory (tests/hostile_models.py writes it) is read by entrosum::load_model; a model that
//    loads is scored on data of its features. A FormatError (or std::invalid_argument from scoring) is a refusal;
//    any other exception fails the run.
// 2. parse_metadata and parse_npy on hostile text and images;
// 3. every model's fit and score on tiny shapes (one row, one feature) and on extreme values (1e300, 1e-300);
// 4. the scoring and inference entry points on parameters of the wrong sizes (each must be refused).
// Prints the counts and "N passed, 0 failed".
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <entrosum/entrosum.hpp>
#include <entrosum/io/npz.hpp>

namespace {

using entrosum::Index;
using Data = entrosum::RowMatrix<double>;

int passed = 0;
int failed = 0;

/// Runs `check`; a FormatError, NumericalError or std::invalid_argument is an expected refusal, anything else a
/// failure of the run.
void expect_no_crash(const std::string& what, const std::function<void()>& check) {
  try {
    check();
  } catch (const entrosum::FormatError&) {
  } catch (const entrosum::NumericalError&) {
  } catch (const std::invalid_argument&) {
  } catch (const std::exception& error) {
    std::printf("FAILED %s: unexpected %s\n", what.c_str(), error.what());
    ++failed;
    return;
  }
  ++passed;
}

/// Runs `check`, which must be refused with std::invalid_argument (parameters that do not fit the data); a check
/// that returns, or throws anything else, fails the run.
void expect_refusal(const std::string& what, const std::function<void()>& check) {
  try {
    check();
  } catch (const std::invalid_argument&) {
    ++passed;
    return;
  } catch (const std::exception& error) {
    std::printf("FAILED %s: %s instead of std::invalid_argument\n", what.c_str(), error.what());
    ++failed;
    return;
  }
  std::printf("FAILED %s: not refused\n", what.c_str());
  ++failed;
}

entrosum::Execution execution(int n_threads = 2, Index chunk_size = 0) {
  entrosum::Execution e;
  e.n_threads = n_threads;
  e.chunk_size = chunk_size;
  return e;
}

Data random_data(Index rows, Index cols, double scale, unsigned seed) {
  entrosum::Random random(seed);
  Data data(rows, cols);
  for (Index i = 0; i < data.size(); ++i) data.data()[i] = scale * (random.uniform() - 0.5);
  return data;
}

void read_corpus(const std::filesystem::path& directory) {
  int refused = 0, loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    const std::string path = entry.path().string();
    expect_no_crash("load " + path, [&] {
      entrosum::SavedModel model;
      try {
        model = entrosum::load_model(path);
      } catch (const entrosum::FormatError& error) {
        if (std::string(error.what()).find(path) == std::string::npos)
          throw std::runtime_error(std::string("a FormatError that does not name the file: ") + error.what());
        ++refused;
        return;
      }
      ++loaded;
      const Data data = random_data(5, model.n_features, 4.0, 1).cwiseAbs().array().round();
      (void)entrosum::score<double>(model, data, execution());
      if (!std::holds_alternative<entrosum::SavedSparseCoding>(model.params))
        (void)entrosum::score_samples<double>(model, data, execution());
    });
  }
  std::printf("corpus: %d refused, %d loaded (damaged only where the C++ reader does not look)\n", refused, loaded);
}

void parse_hostile_text() {
  const std::vector<std::string> texts = {
      std::string(100000, '['),
      std::string(70, '[') + std::string(70, ']'),
      "{\"a\": 1e400}",
      "{\"a\": \"\xff\xfe\"}",
      "\xEF\xBB\xBF{}",
      "{\"a\": [1, 2,",
      std::string("{\"a\": \"") + std::string(1 << 20, 'x') + "\"}",
      "",
      "{\"a\": " + std::string(5000, '9') + "}",
  };
  for (const std::string& text : texts)
    expect_no_crash("parse_metadata", [&] { (void)entrosum::parse_metadata(text); });
  const std::string magic("\x93NUMPY\x01\x00", 8);
  auto image = [&](const std::string& header, std::size_t data_bytes) {
    std::string text = header;
    text.resize(118, ' ');
    text += '\n';
    std::string out = magic;
    out += static_cast<char>(text.size() & 0xFF);
    out += static_cast<char>(text.size() >> 8);
    return out + text + std::string(data_bytes, '\0');
  };
  const std::vector<std::string> images = {
      image("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", 16),
      image("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 16),
      image("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 16),
      image("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 0, 3), }", 0),
      image("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", 48),
      image("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16),
      image("{'descr': '<f8', 'fortran_order': False, 'shape': (", 16),
      image("{'descr': '<f", 16),
      image("", 0),
      magic.substr(0, 6) + "\x02\x00\xff\xff\xff\xff",
      magic.substr(0, 9),
  };
  for (const std::string& bytes : images)
    expect_no_crash("parse_npy", [&] { (void)entrosum::npz::parse_npy(bytes, "image"); });
}

void fit_extreme_data() {
  const std::vector<std::pair<Index, Index>> shapes = {{1, 1}, {2, 1}, {1, 3}, {3, 2}, {40, 3}};
  const std::vector<double> scales = {1.0, 1e-300, 1e300, 1e150};
  for (const auto& [rows, cols] : shapes) {
    for (const double scale : scales) {
      const Data data = random_data(rows, cols, scale, static_cast<unsigned>(rows * 7 + cols));
      const Data counts = data.cwiseAbs().cwiseMin(1e6).array().round();
      const Data binary = (data.array() > 0.0).cast<double>();
      const Eigen::VectorXd no_weights;
      const std::string tag = std::to_string(rows) + "x" + std::to_string(cols) + " scale " + std::to_string(scale);
      entrosum::StopOptions stop;
      stop.max_iter = 5;
      for (const auto type : {entrosum::CovarianceType::full, entrosum::CovarianceType::tied,
                              entrosum::CovarianceType::diag, entrosum::CovarianceType::spherical,
                              entrosum::CovarianceType::tied_diag, entrosum::CovarianceType::tied_spherical}) {
        expect_no_crash("gmm " + tag, [&] {
          const entrosum::GaussianMixtureParams initial = entrosum::gaussian_mixture_from_responsibilities<double>(
              data, no_weights, entrosum::random_responsibilities(3), 1, type, 1e-6, execution());
          entrosum::GaussianMixtureOptions options;
          options.stop = stop;
          options.execution = execution(2, 1);
          const entrosum::GaussianMixtureFit fit =
              entrosum::fit_gaussian_mixture<double>(data, no_weights, initial, options);
          (void)entrosum::gaussian_mixture_score<double>(data, fit.params, nullptr, execution());
        });
      }
      expect_no_crash("kmeans " + tag,
                      [&] { (void)entrosum::kmeans<double>(data, no_weights, 1, 5, 10, execution()); });
      expect_no_crash("poisson " + tag, [&] {
        const entrosum::DiscreteMixtureParams initial =
            entrosum::discrete_mixture_from_responsibilities<entrosum::PoissonMixture, double>(
                counts, no_weights, entrosum::random_responsibilities(4), 1, {}, execution());
        entrosum::DiscreteMixtureOptions<entrosum::PoissonMixture> options;
        options.stop = stop;
        (void)entrosum::fit_discrete_mixture<entrosum::PoissonMixture, double>(counts, no_weights, initial, options);
      });
      expect_no_crash("gamma " + tag, [&] {
        const Data positive = data.cwiseAbs().array() + std::numeric_limits<double>::min();
        const entrosum::DiscreteMixtureParams initial =
            entrosum::discrete_mixture_from_responsibilities<entrosum::GammaMixture, double>(
                positive, no_weights, entrosum::random_responsibilities(4), 1, {}, execution());
        entrosum::DiscreteMixtureOptions<entrosum::GammaMixture> options;
        options.stop = stop;
        const entrosum::DiscreteMixtureFit fit =
            entrosum::fit_discrete_mixture<entrosum::GammaMixture, double>(positive, no_weights, initial, options);
        (void)entrosum::discrete_mixture_score<entrosum::GammaMixture, double>(positive, fit.params, {}, nullptr,
                                                                               execution());
      });
      expect_no_crash("binomial " + tag, [&] {
        entrosum::BinomialMixture::Settings settings{Eigen::VectorXd::Constant(cols, 1e6)};
        const entrosum::DiscreteMixtureParams initial =
            entrosum::discrete_mixture_from_responsibilities<entrosum::BinomialMixture, double>(
                counts, no_weights, entrosum::random_responsibilities(4), 1, settings, execution());
        entrosum::DiscreteMixtureOptions<entrosum::BinomialMixture> options;
        options.settings = settings;
        options.stop = stop;
        (void)entrosum::fit_discrete_mixture<entrosum::BinomialMixture, double>(counts, no_weights, initial, options);
      });
      expect_no_crash("mixed " + tag, [&] {
        // a Gaussian column, a categorical one of 2 levels (codes outside them set no level) and Poisson ones
        entrosum::MixedSpec spec;
        spec.families.assign(static_cast<std::size_t>(cols), entrosum::ColumnFamily::poisson);
        spec.families[0] = entrosum::ColumnFamily::gaussian;
        if (cols > 1) {
          spec.families[1] = entrosum::ColumnFamily::categorical;
          spec.n_levels = {2};
        }
        spec.reg_covar = 1e-6;
        const entrosum::MixedMixtureParams initial = entrosum::mixed_mixture_from_initial_statistics(
            entrosum::mixed_mixture_responsibility_statistics<double>(
                counts, no_weights, entrosum::random_responsibilities(4), 1, spec, execution()),
            spec);
        entrosum::MixedMixtureOptions options{spec, stop, execution()};
        const entrosum::MixedMixtureFit fit = entrosum::fit_mixed_mixture<double>(counts, no_weights, initial, options);
        (void)entrosum::mixed_mixture_score<double>(counts, fit.params, spec, nullptr, execution());
      });
      expect_no_crash("categorical " + tag, [&] {
        // codes out of range (the scaled data) are left out of the one-hot rows, never written outside them
        entrosum::CategoricalMixture::Settings settings{Eigen::Matrix<Index, Eigen::Dynamic, 1>::Constant(cols, 3)};
        const entrosum::DiscreteMixtureParams initial =
            entrosum::discrete_mixture_from_responsibilities<entrosum::CategoricalMixture, double>(
                data, no_weights, entrosum::random_responsibilities(4), 1, settings, execution());
        entrosum::DiscreteMixtureOptions<entrosum::CategoricalMixture> options;
        options.settings = settings;
        options.stop = stop;
        const entrosum::DiscreteMixtureFit fit =
            entrosum::fit_discrete_mixture<entrosum::CategoricalMixture, double>(data, no_weights, initial, options);
        (void)entrosum::discrete_mixture_score<entrosum::CategoricalMixture, double>(data, fit.params, settings,
                                                                                     nullptr, execution());
      });
      expect_no_crash("multinomial " + tag, [&] {
        const Data word_counts = counts.array() + 1.0;  // every row with a positive total
        const entrosum::DiscreteMixtureParams initial =
            entrosum::discrete_mixture_from_responsibilities<entrosum::MultinomialMixture, double>(
                word_counts, no_weights, entrosum::random_responsibilities(4), 1, {}, execution());
        entrosum::DiscreteMixtureOptions<entrosum::MultinomialMixture> options;
        options.stop = stop;
        const entrosum::DiscreteMixtureFit fit = entrosum::fit_discrete_mixture<entrosum::MultinomialMixture, double>(
            word_counts, no_weights, initial, options);
        (void)entrosum::discrete_mixture_score<entrosum::MultinomialMixture, double>(word_counts, fit.params, {},
                                                                                     nullptr, execution());
      });
      expect_no_crash("bernoulli " + tag, [&] {
        const entrosum::DiscreteMixtureParams initial =
            entrosum::discrete_mixture_from_responsibilities<entrosum::BernoulliMixture, double>(
                binary, no_weights, entrosum::random_responsibilities(4), 1, {0.5}, execution());
        entrosum::DiscreteMixtureOptions<entrosum::BernoulliMixture> options;
        options.stop = stop;
        (void)entrosum::fit_discrete_mixture<entrosum::BernoulliMixture, double>(binary, no_weights, initial, options);
      });
      for (const auto noise : {entrosum::NoiseModel::isotropic, entrosum::NoiseModel::diagonal}) {
        expect_no_crash("linear " + tag, [&] {
          entrosum::LinearGaussianParams initial;
          initial.components = Eigen::MatrixXd::Ones(cols, 1);
          entrosum::LinearGaussianOptions options;
          options.noise = noise;
          options.stop = stop;
          options.precompute = rows > 2;
          const entrosum::LinearGaussianFit fit = entrosum::fit_linear_gaussian<double>(data, initial, options);
          (void)entrosum::linear_gaussian_log_likelihood<double>(data, fit.params, execution());
          (void)entrosum::linear_gaussian_posterior_mean<double>(data, fit.params, execution());
        });
      }
      expect_no_crash("ppca closed form " + tag, [&] {
        (void)entrosum::fit_ppca_closed_form<double>(data, std::min<Index>(1, cols), execution());
      });
      for (const auto form : {entrosum::PosteriorForm::diagonal, entrosum::PosteriorForm::full}) {
        expect_no_crash("sparse coding " + tag, [&] {
          entrosum::SparseCodingParams initial;
          initial.components = Eigen::MatrixXd::Ones(cols, 2);
          initial.noise_variance = -1.0;
          entrosum::SparseCodingOptions options;
          options.posterior = form;
          options.stop = stop;
          options.e_step.max_iter = 10;
          (void)entrosum::fit_sparse_coding<double>(data, initial, options);
        });
      }
    }
  }
}

/// Parameters of the wrong sizes for the data, given to the library's scoring and inference entry points
/// directly (the bindings check them too, before): each must be refused, none may read out of bounds.
void mismatched_parameters() {
  const Data data = random_data(6, 3, 2.0, 5);
  const Data counts = data.cwiseAbs().array().round();
  using entrosum::CovarianceType;
  for (const auto type : {CovarianceType::full, CovarianceType::tied, CovarianceType::diag, CovarianceType::spherical,
                          CovarianceType::tied_diag, CovarianceType::tied_spherical}) {
    const entrosum::GaussianMixtureParams fitted = entrosum::gaussian_mixture_from_responsibilities<double>(
        data, Eigen::VectorXd(), entrosum::random_responsibilities(3), 2, type, 1e-6, execution());
    auto broken = [&](const std::string& what, const std::function<void(entrosum::GaussianMixtureParams&)>& edit) {
      entrosum::GaussianMixtureParams params = fitted;
      edit(params);
      expect_refusal("gmm score, " + what,
                     [&] { (void)entrosum::gaussian_mixture_score<double>(data, params, nullptr, execution()); });
    };
    broken("no weights", [](auto& p) { p.weights.resize(0); });
    broken("one weight for two components", [](auto& p) { p.weights.conservativeResize(1); });
    broken("means of one row", [](auto& p) { p.means.conservativeResize(1, Eigen::NoChange); });
    broken("means of two features", [](auto& p) { p.means.conservativeResize(Eigen::NoChange, 2); });
    if (entrosum::shared_covariance(type) && type != CovarianceType::tied)  // one row already: give two
      broken("precision factors of two rows",
             [](auto& p) { p.precision_cholesky.conservativeResize(2, Eigen::NoChange); });
    else
      broken("precision factors of one row",
             [](auto& p) { p.precision_cholesky.conservativeResize(1, Eigen::NoChange); });
    broken("no precision factors", [](auto& p) { p.precision_cholesky.resize(0, 0); });
    // and on data of another width
    expect_refusal("gmm score, data of 2 features", [&] {
      (void)entrosum::gaussian_mixture_score<double>(data.leftCols(2), fitted, nullptr, execution());
    });
  }
  entrosum::DiscreteMixtureParams poisson;
  poisson.weights = Eigen::VectorXd::Constant(2, 0.5);
  poisson.means = Eigen::MatrixXd::Ones(2, 3);
  auto poisson_score = [&](const entrosum::DiscreteMixtureParams& params, const Data& x) {
    return [&params, &x] {
      (void)entrosum::discrete_mixture_score<entrosum::PoissonMixture, double>(x, params, {}, nullptr, execution());
    };
  };
  entrosum::DiscreteMixtureParams short_weights = poisson;
  short_weights.weights.conservativeResize(1);
  expect_refusal("poisson score, one weight for two components", poisson_score(short_weights, counts));
  const Data narrow = counts.leftCols(2);
  expect_refusal("poisson score, data of 2 features", poisson_score(poisson, narrow));

  entrosum::MixedSpec mixed_spec;
  mixed_spec.families = {entrosum::ColumnFamily::gaussian, entrosum::ColumnFamily::poisson,
                         entrosum::ColumnFamily::categorical};
  mixed_spec.n_levels = {2};
  entrosum::MixedMixtureParams mixed;
  mixed.weights = Eigen::VectorXd::Constant(2, 0.5);
  mixed.means = Eigen::MatrixXd::Ones(2, 3);
  mixed.variances = Eigen::MatrixXd::Ones(2, 1);
  mixed.shapes = Eigen::MatrixXd(2, 0);
  mixed.probabilities = Eigen::MatrixXd::Constant(2, 2, 0.5);
  auto broken_mixed = [&](const std::string& what, const std::function<void(entrosum::MixedMixtureParams&)>& edit) {
    entrosum::MixedMixtureParams params = mixed;
    edit(params);
    expect_refusal("mixed score, " + what, [&] {
      (void)entrosum::mixed_mixture_score<double>(counts, params, mixed_spec, nullptr, execution());
    });
  };
  broken_mixed("one weight for two components", [](auto& p) { p.weights.conservativeResize(1); });
  broken_mixed("no variances", [](auto& p) { p.variances.resize(2, 0); });
  broken_mixed("probabilities of one level", [](auto& p) { p.probabilities.conservativeResize(Eigen::NoChange, 1); });
  broken_mixed("a negative variance", [](auto& p) { p.variances(0, 0) = -1.0; });
  expect_refusal("mixed score, data of 2 features",
                 [&] { (void)entrosum::mixed_mixture_score<double>(narrow, mixed, mixed_spec, nullptr, execution()); });

  entrosum::LinearGaussianParams linear;
  linear.mean = Eigen::VectorXd::Zero(3);
  linear.components = Eigen::MatrixXd::Ones(3, 1);
  linear.noise_variance = Eigen::VectorXd::Ones(3);
  auto broken_linear = [&](const std::string& what, const std::function<void(entrosum::LinearGaussianParams&)>& edit) {
    entrosum::LinearGaussianParams params = linear;
    edit(params);
    expect_refusal("linear log-likelihood, " + what,
                   [&] { (void)entrosum::linear_gaussian_log_likelihood<double>(data, params, execution()); });
    expect_refusal("linear posterior mean, " + what,
                   [&] { (void)entrosum::linear_gaussian_posterior_mean<double>(data, params, execution()); });
  };
  broken_linear("no mean", [](auto& p) { p.mean.resize(0); });
  broken_linear("components of 2 rows", [](auto& p) { p.components.conservativeResize(2, Eigen::NoChange); });
  broken_linear("one noise variance", [](auto& p) { p.noise_variance.conservativeResize(1); });

  entrosum::SparseCodingParams sparse;
  sparse.components = Eigen::MatrixXd::Ones(3, 2) / std::sqrt(3.0);
  sparse.scales = Eigen::VectorXd::Ones(2);
  auto broken_sparse = [&](const std::string& what, const std::function<void(entrosum::SparseCodingParams&)>& edit) {
    entrosum::SparseCodingParams params = sparse;
    edit(params);
    for (const auto form : {entrosum::PosteriorForm::diagonal, entrosum::PosteriorForm::full})
      expect_refusal("sparse posterior, " + what, [&] {
        (void)entrosum::sparse_coding_posterior<double>(data, params, form, {}, execution(), true);
      });
  };
  broken_sparse("no scales", [](auto& p) { p.scales.resize(0); });
  broken_sparse("one scale for two atoms", [](auto& p) { p.scales.conservativeResize(1); });
  broken_sparse("components of 2 rows", [](auto& p) { p.components.conservativeResize(2, Eigen::NoChange); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hostile_inputs CORPUS_DIRECTORY\n");
    return 2;
  }
  read_corpus(argv[1]);
  parse_hostile_text();
  fit_extreme_data();
  mismatched_parameters();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
