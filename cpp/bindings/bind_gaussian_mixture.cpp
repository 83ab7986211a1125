// Gaussian mixtures: EM, initialisation (from k-means labels or random responsibilities), scoring.
#include <string>
#include <utility>

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/mixtures/gaussian_mixture.hpp"
#include "mixture_common.hpp"

namespace entrosum::bindings {

namespace {

CovarianceType parse_covariance_type(const std::string& name) {
  if (name == "full") return CovarianceType::full;
  if (name == "tied") return CovarianceType::tied;
  if (name == "diag") return CovarianceType::diag;
  if (name == "spherical") return CovarianceType::spherical;
  if (name == "tied_diag") return CovarianceType::tied_diag;
  if (name == "tied_spherical") return CovarianceType::tied_spherical;
  throw py::value_error(
      "covariance_type must be 'full', 'tied', 'diag', 'spherical', 'tied_diag' or 'tied_spherical', got '" + name +
      "'");
}

GaussianMixtureParams make_params(const std::string& type, Eigen::VectorXd weights, Eigen::MatrixXd means,
                                  Eigen::MatrixXd covariances, Eigen::MatrixXd precision_cholesky) {
  GaussianMixtureParams p;
  p.covariance_type = parse_covariance_type(type);
  p.weights = std::move(weights);
  p.means = std::move(means);
  p.covariances = std::move(covariances);
  p.precision_cholesky = std::move(precision_cholesky);
  return p;
}

GaussianMixtureParams params_from_dict(const std::string& type, const py::dict& params) {
  return make_params(type, dict_entry<Eigen::VectorXd>(params, "weights"), dict_entry<Eigen::MatrixXd>(params, "means"),
                     dict_entry<Eigen::MatrixXd>(params, "covariances"),
                     dict_entry<Eigen::MatrixXd>(params, "precision_cholesky"));
}

/// For a fit, which takes the start over: the covariances and factors are removed from `params` once copied, so
/// that the start is not held twice through the fit (full covariances at D = K = 128 are as large as the data).
GaussianMixtureParams take_params_from_dict(const std::string& type, py::dict& params) {
  GaussianMixtureParams p = make_params(type, dict_entry<Eigen::VectorXd>(params, "weights"),
                                        dict_entry<Eigen::MatrixXd>(params, "means"), {}, {});
  p.covariances = dict_entry<Eigen::MatrixXd>(params, "covariances");
  params.attr("pop")("covariances");
  p.precision_cholesky = dict_entry<Eigen::MatrixXd>(params, "precision_cholesky");
  params.attr("pop")("precision_cholesky");
  return p;
}

/// A stacked matrix as a C-ordered array, the layout the Python layer reshapes to (K, D, D) without copying;
/// `matrix` is freed once copied, so that a result is not held twice.
py::array_t<double> take_as_c_order(Eigen::MatrixXd& matrix) {
  py::array_t<double> out({matrix.rows(), matrix.cols()});
  Eigen::Map<RowMatrix<double>>(out.mutable_data(), matrix.rows(), matrix.cols()) = matrix;
  matrix.resize(0, 0);
  return out;
}

Results params_to_dict(GaussianMixtureParams&& p) {
  Results out;
  out["weights"] = p.weights;
  out["means"] = p.means;
  out["covariances"] = take_as_c_order(p.covariances);
  out["precision_cholesky"] = take_as_c_order(p.precision_cholesky);
  out["recovered"] = recovered_to_list(p.recovered);
  return out;
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "gmm_fit",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const std::string& type, py::dict params,
         double reg_covar, const StopOptions& stop, int n_threads, Index chunk_size, const Callback& callback,
         bool learn_weights) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        GaussianMixtureOptions options;
        options.reg_covar = reg_covar;
        options.learn_weights = learn_weights;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size, &data);
        GaussianMixtureParams initial = take_params_from_dict(type, params);
        check_params(initial, view.cols(), true, true);
        const IterationCallback on_iteration = wrap_callback(callback);
        GaussianMixtureFit fit = run_without_gil(
            [&] { return fit_gaussian_mixture<T>(view, sample_weight, std::move(initial), options, on_iteration); });
        Results out = params_to_dict(std::move(fit.params));
        add_monitor(out, fit.monitor);
        return out;
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("covariance_type"), py::arg("params"), py::arg("reg_covar"),
      py::arg("stop"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      py::arg("learn_weights") = true,
      "EM for a Gaussian mixture from initial parameters (a dict of weights, means and stacked covariances and "
      "precision_cholesky, see GaussianMixtureParams), which the fit takes over: it removes 'covariances' and "
      "'precision_cholesky' from the dict, so that they are not held twice. learn_weights=False keeps the initial "
      "weights.");

  m.def(
      "gmm_init_from_labels",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, Index n_components,
         const std::string& type, double reg_covar, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_n_components(n_components);
        check_sample_weight(sample_weight, view.rows());
        check_labels(labels, view.rows(), n_components);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const CovarianceType covariance_type = parse_covariance_type(type);
        const ResponsibilitySource source = label_responsibilities(labels.data());
        return params_to_dict(run_without_gil([&] {
          return gaussian_mixture_from_responsibilities<T>(view, sample_weight, source, n_components, covariance_type,
                                                           reg_covar, execution);
        }));
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("labels"), py::arg("n_components"), py::arg("covariance_type"),
      py::arg("reg_covar"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "Parameters from one-hot responsibilities given by labels (-1: none).");

  m.def(
      "gmm_init_random",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, std::uint64_t seed, Index n_components,
         const std::string& type, double reg_covar, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_n_components(n_components);
        check_sample_weight(sample_weight, view.rows());
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const CovarianceType covariance_type = parse_covariance_type(type);
        const ResponsibilitySource source = random_responsibilities(seed);
        return params_to_dict(run_without_gil([&] {
          return gaussian_mixture_from_responsibilities<T>(view, sample_weight, source, n_components, covariance_type,
                                                           reg_covar, execution);
        }));
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("seed"), py::arg("n_components"), py::arg("covariance_type"),
      py::arg("reg_covar"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "Parameters from random responsibilities.");

  m.def(
      "gmm_responsibility_statistics",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, std::uint64_t seed,
         Index row_offset, Index n_components, const std::string& type, const Eigen::VectorXd& shift, int n_threads,
         Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_n_components(n_components);
        check_sample_weight(sample_weight, view.rows());
        check_size("shift", shift, view.cols());
        if (labels.size()) check_labels(labels, view.rows(), n_components);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const ResponsibilitySource source =
            labels.size() ? label_responsibilities(labels.data()) : random_responsibilities(seed, row_offset);
        return run_without_gil([&] {
          return gaussian_mixture_responsibility_statistics<T>(view, sample_weight, source, n_components,
                                                               parse_covariance_type(type), shift, execution);
        });
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("labels"), py::arg("seed"), py::arg("row_offset"),
      py::arg("n_components"), py::arg("covariance_type"), py::arg("shift"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0,
      "An initialising pass over a block of rows (one-hot on labels, or random responsibilities of rows "
      "row_offset + n when labels is empty): mergeable statistics about shift.");

  m.def(
      "gmm_e_step",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const std::string& type, const py::dict& params,
         int n_threads, Index chunk_size, Index row_offset) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        const GaussianMixtureParams p = params_from_dict(type, params);
        check_params(p, view.cols(), false, true);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const GaussianMixtureModel<T> model(view, sample_weight, 0.0, execution);
        GaussianMixtureExpectation e = run_without_gil([&] { return model.e_step(p); });
        offset_rows(e.stats.totals, row_offset);
        return e;
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("covariance_type"), py::arg("params"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("row_offset") = 0,
      "The E-step over a chunk of rows (rows row_offset + n of the data set): mergeable sums of the exact "
      "posterior's statistics (chunk-level step API).");

  m.def(
      "gmm_score",
      [](const CArray<T>& data, const std::string& type, const Eigen::VectorXd& weights, const Eigen::MatrixXd& means,
         const Eigen::MatrixXd& precision_cholesky, bool with_responsibilities, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const GaussianMixtureParams params = make_params(type, weights, means, Eigen::MatrixXd(), precision_cholesky);
        check_params(params, view.cols(), false, true);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        RowMatrix<double> resp;
        Eigen::VectorXd log_likelihood = run_without_gil([&] {
          return gaussian_mixture_score<T>(view, params, with_responsibilities ? &resp : nullptr, execution);
        });
        return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
      },
      py::arg("data"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"), py::arg("precision_cholesky"),
      py::arg("with_responsibilities"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "(log p(x_n), responsibilities or None).");
}

}  // namespace

void bind_gaussian_mixture(py::module_& m) {
  using Expectation = GaussianMixtureExpectation;
  bind_statistics<Expectation>(
      m, "GaussianMixtureExpectation",
      "Sums of a Gaussian mixture's posterior statistics over rows, about a shift; mergeable and picklable.",
      [](const Expectation& e) {
        return py::make_tuple(static_cast<int>(e.stats.type), totals_state(e.stats.totals), e.stats.first,
                              e.stats.second, e.shift);
      },
      [](const py::tuple& state) {
        if (state.size() != 5) throw std::runtime_error("invalid GaussianMixtureExpectation state");
        Expectation e;
        e.stats.type = static_cast<CovarianceType>(state[0].cast<int>());
        e.stats.totals = totals_from_state(state[1]);
        e.stats.first = state[2].cast<Eigen::MatrixXd>();
        e.stats.second = state[3].cast<Eigen::MatrixXd>();
        e.shift = state[4].cast<Eigen::VectorXd>();
        return e;
      })
      .def_property_readonly("count", [](const Expectation& e) { return e.stats.totals.count; })
      .def_property_readonly("shift", [](const Expectation& e) { return e.shift; })
      .def_property_readonly("resp_sum", [](const Expectation& e) { return e.stats.totals.resp_sum; });

  m.def(
      "gmm_m_step",
      [](const Expectation& expectation, const std::string& type, const py::dict& params, double reg_covar,
         bool learn_weights) {
        const GaussianMixtureParams p = params_from_dict(type, params);
        check_params(p, p.means.cols(), false, false);
        check_expectation(expectation, p.covariance_type, p.weights.size(), p.means.cols());
        return params_to_dict(gaussian_mixture_m_step(expectation, p, reg_covar, learn_weights));
      },
      py::arg("expectation"), py::arg("covariance_type"), py::arg("params"), py::arg("reg_covar"),
      py::arg("learn_weights") = true,
      "The M-step from merged statistics (learn_weights=False keeps params' weights).");
  m.def(
      "gmm_terms",
      [](const Expectation& expectation, const std::string& type, const py::dict& params) {
        const GaussianMixtureParams p = params_from_dict(type, params);
        check_params(p, p.means.cols(), false, true);
        check_expectation(expectation, p.covariance_type, p.weights.size(), p.means.cols());
        return elbo_terms_to_dict(gaussian_mixture_elbo(expectation, p));
      },
      py::arg("expectation"), py::arg("covariance_type"), py::arg("params"),
      "F(q, Θ) per sample and the entropy sum's terms for the q of the statistics and the parameters Θ.");

  m.def(
      "gmm_initial_means",
      [](const Expectation& first) {
        check_n_components(first.stats.totals.resp_sum.size());
        check_expectation(first, first.stats.type, first.stats.totals.resp_sum.size(), first.shift.size());
        const auto [means, shift] = gaussian_mixture_initial_means(first);
        return py::make_tuple(means, shift);
      },
      py::arg("first"), "(means, shift of the second pass) from an initialising first (diag) pass.");
  m.def(
      "gmm_from_initial_statistics",
      [](const Expectation& second, const Eigen::MatrixXd& means, double reg_covar) {
        check_n_components(means.rows());
        check_expectation(second, second.stats.type, means.rows(), means.cols());
        return params_to_dict(gaussian_mixture_from_initial_statistics(second, means, reg_covar));
      },
      py::arg("second"), py::arg("means"), py::arg("reg_covar"),
      "Initial parameters from the merged second initialising pass.");

  bind_for<float>(m);
  bind_for<double>(m);
  m.def(
      "gmm_precision_cholesky",
      [](const std::string& type, const Eigen::MatrixXd& means, Eigen::MatrixXd covariances) {
        GaussianMixtureParams p =
            make_params(type, Eigen::VectorXd::Ones(means.rows()), means, std::move(covariances), {});
        check_params(p, means.cols(), true, false);
        compute_precision_cholesky(p);
        p.covariances.resize(0, 0);  // freed before the result is copied out (full: K·D² each)
        return take_as_c_order(p.precision_cholesky);
      },
      py::arg("covariance_type"), py::arg("means"), py::arg("covariances"),
      "Precision Cholesky factors (stacked) from covariances (stacked).");
  m.def(
      "gmm_covariances",
      [](const std::string& type, const Eigen::MatrixXd& means, Eigen::MatrixXd precision_cholesky) {
        GaussianMixtureParams p =
            make_params(type, Eigen::VectorXd::Ones(means.rows()), means, {}, std::move(precision_cholesky));
        check_params(p, means.cols(), false, true);
        compute_covariances_from_precision_cholesky(p);
        p.precision_cholesky.resize(0, 0);  // freed before the result is copied out (full: K·D² each)
        return take_as_c_order(p.covariances);
      },
      py::arg("covariance_type"), py::arg("means"), py::arg("precision_cholesky"),
      "Covariances (stacked) from precision Cholesky factors (stacked).");
}

}  // namespace entrosum::bindings
