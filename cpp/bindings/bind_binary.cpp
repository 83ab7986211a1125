// Binary latents: binary sparse coding and sigmoid belief nets, with exact or truncated posteriors.
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "entrosum/binary/binary_sparse_coding.hpp"
#include "entrosum/binary/sigmoid_belief_net.hpp"

namespace entrosum::bindings {

namespace {

BinaryPosteriorOptions make_posterior(const std::string& kind, Index n_states, std::uint64_t seed,
                                      const std::vector<Index>& proposals) {
  BinaryPosteriorOptions options;
  if (kind == "exact") {
    options.kind = BinaryPosteriorKind::exact;
  } else if (kind == "truncated") {
    options.kind = BinaryPosteriorKind::truncated;
  } else {
    throw py::value_error("posterior must be 'exact' or 'truncated', got '" + kind + "'");
  }
  options.n_states = n_states;
  options.seed = seed;
  if (!proposals.empty()) {
    if (proposals.size() != 3) throw py::value_error("proposals must be (bit_flips, prior_draws, crossovers)");
    options.bit_flips = proposals[0];
    options.prior_draws = proposals[1];
    options.crossovers = proposals[2];
  }
  return options;
}

/// Θ of binary sparse coding from its parts.
BinarySparseCodingParams bsc_params(const Eigen::MatrixXd& components, const Eigen::VectorXd& offset,
                                    double noise_variance, const Eigen::VectorXd& prior) {
  BinarySparseCodingParams params;
  params.components = components;
  params.offset = offset;
  params.noise_variance = noise_variance;
  params.prior = prior;
  return params;
}

BinarySparseCodingParams bsc_from_dict(const py::dict& params) {
  return bsc_params(dict_entry<Eigen::MatrixXd>(params, "components"), dict_entry<Eigen::VectorXd>(params, "offset"),
                    dict_entry<double>(params, "noise_variance"), dict_entry<Eigen::VectorXd>(params, "prior"));
}

Results bsc_to_dict(const BinarySparseCodingParams& params) {
  Results out;
  out["components"] = params.components;
  out["offset"] = params.offset;
  out["noise_variance"] = params.noise_variance;
  out["prior"] = params.prior;
  return out;
}

/// The kept states (n, width, H) as 0/1 bytes: exact posteriors share the 2^H states.
py::array_t<std::uint8_t> states_array(const std::vector<std::uint64_t>& keys, Index n_rows, Index width,
                                       Index n_components, bool shared) {
  py::array_t<std::uint8_t> out(
      {static_cast<py::ssize_t>(n_rows), static_cast<py::ssize_t>(width), static_cast<py::ssize_t>(n_components)});
  std::uint8_t* data = out.mutable_data();
  for (Index n = 0; n < n_rows; ++n)
    for (Index s = 0; s < width; ++s) {
      const std::uint64_t key = shared ? static_cast<std::uint64_t>(s) : keys[static_cast<std::size_t>(n * width + s)];
      for (Index h = 0; h < n_components; ++h) *data++ = static_cast<std::uint8_t>((key >> h) & 1U);
    }
  return out;
}

SigmoidBeliefNetParams sbn_from_dict(const py::dict& params) {
  SigmoidBeliefNetParams p;
  p.components = dict_entry<Eigen::MatrixXd>(params, "components");
  p.offset = dict_entry<Eigen::VectorXd>(params, "offset");
  p.prior = dict_entry<Eigen::VectorXd>(params, "prior");
  return p;
}

Results sbn_to_dict(const SigmoidBeliefNetParams& params) {
  Results out;
  out["components"] = params.components;
  out["offset"] = params.offset;
  out["prior"] = params.prior;
  return out;
}

/// The posterior of new data under fixed parameters, for either model: `infer(view, options, rounds, execution,
/// output)` returns the statistics and `terms(stats)` the entropy sum's terms.
template <typename T, typename Infer, typename Terms>
Results posterior_of(const CArray<T>& data, Index n_components, const BinaryPosteriorOptions& options, int rounds,
                     bool with_states, int n_threads, Index chunk_size, const Infer& infer, const Terms& terms) {
  const DataRef<T> view = as_data(data);
  check_binary_posterior(options, n_components);
  const Execution execution = make_execution(n_threads, chunk_size, &data);
  const bool exact = options.kind == BinaryPosteriorKind::exact;
  const Index width = exact ? (Index(1) << n_components) : options.n_states;
  RowMatrix<T> means(view.rows(), n_components);
  std::vector<std::uint64_t> keys;
  RowMatrix<double> probabilities;
  BinaryPosteriorOutput<T> output{&means, nullptr, nullptr};
  if (with_states) {
    if (!exact) keys.resize(static_cast<std::size_t>(view.rows() * width));
    probabilities.resize(view.rows(), width);
    output.keys = &keys;
    output.probabilities = &probabilities;
  }
  const auto stats = run_without_gil([&] { return infer(view, options, rounds, execution, output); });
  Results out;
  out["means"] = means;
  out["terms"] = elbo_terms_to_dict(terms(stats));
  out["free_energy"] = stats.log_joint_sum / stats.weight;
  if (with_states) {
    out["states"] = states_array(keys, view.rows(), width, n_components, exact);
    out["probabilities"] = probabilities;
  }
  return out;
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "fit_binary_sparse_coding",
      [](const CArray<T>& data, const Eigen::VectorXd& weights, const py::dict& initial, const std::string& posterior,
         Index n_states, std::uint64_t seed, const std::vector<Index>& proposals, bool shared_prior,
         const StopOptions& stop, int n_threads, Index chunk_size, const Callback& callback) {
        const DataRef<T> view = as_data(data);
        BinarySparseCodingOptions options;
        options.posterior = make_posterior(posterior, n_states, seed, proposals);
        options.shared_prior = shared_prior;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size, &data);
        const BinarySparseCodingParams start = bsc_from_dict(initial);
        const IterationCallback on_iteration = wrap_callback(callback);
        const BinarySparseCodingFit fit =
            run_without_gil([&] { return fit_binary_sparse_coding<T>(view, weights, start, options, on_iteration); });
        Results out = bsc_to_dict(fit.params);
        add_monitor(out, fit.monitor);
        return out;
      },
      py::arg("data"), py::arg("weights"), py::arg("initial"), py::arg("posterior"), py::arg("n_states"),
      py::arg("seed"), py::arg("proposals"), py::arg("shared_prior"), py::arg("stop"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "Fit binary sparse coding from initial parameters (components (D, H), offset, noise_variance, prior); "
      "empty weights weigh every row 1.");

  m.def(
      "binary_sparse_coding_posterior",
      [](const CArray<T>& data, const py::dict& params, const std::string& posterior, Index n_states,
         std::uint64_t seed, const std::vector<Index>& proposals, int rounds, bool with_states, int n_threads,
         Index chunk_size) {
        const BinarySparseCodingParams p = bsc_from_dict(params);
        return posterior_of<T>(
            data, p.components.cols(), make_posterior(posterior, n_states, seed, proposals), rounds, with_states,
            n_threads, chunk_size,
            [&](const DataRef<T>& view, const BinaryPosteriorOptions& options, int r, const Execution& execution,
                const BinaryPosteriorOutput<T>& output) {
              return binary_sparse_coding_infer<T>(view, p, options, r, execution, output);
            },
            [&](const BinarySparseCodingStats& stats) { return binary_sparse_coding_terms(stats, p); });
      },
      py::arg("data"), py::arg("params"), py::arg("posterior"), py::arg("n_states"), py::arg("seed"),
      py::arg("proposals"), py::arg("rounds"), py::arg("with_states"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0,
      "The posterior of new data under fixed parameters: means E[z] (n, H), the free energy per sample and the "
      "entropy sum's terms; with_states adds the states (n, width, H) and their probabilities (n, width).");

  m.def(
      "fit_sigmoid_belief_net",
      [](const CArray<T>& data, const Eigen::VectorXd& weights, const py::dict& initial, const std::string& posterior,
         Index n_states, std::uint64_t seed, const std::vector<Index>& proposals, double newton_tol,
         int newton_max_iter, const StopOptions& stop, int n_threads, Index chunk_size, const Callback& callback) {
        const DataRef<T> view = as_data(data);
        SigmoidBeliefNetOptions options;
        options.posterior = make_posterior(posterior, n_states, seed, proposals);
        options.newton.tol = newton_tol;
        options.newton.max_iter = newton_max_iter;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size, &data);
        const SigmoidBeliefNetParams start = sbn_from_dict(initial);
        const IterationCallback on_iteration = wrap_callback(callback);
        const SigmoidBeliefNetFit fit =
            run_without_gil([&] { return fit_sigmoid_belief_net<T>(view, weights, start, options, on_iteration); });
        Results out = sbn_to_dict(fit.params);
        add_monitor(out, fit.monitor);
        return out;
      },
      py::arg("data"), py::arg("weights"), py::arg("initial"), py::arg("posterior"), py::arg("n_states"),
      py::arg("seed"), py::arg("proposals"), py::arg("newton_tol"), py::arg("newton_max_iter"), py::arg("stop"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "Fit a sigmoid belief net to 0/1 data from initial parameters (components (D, H), offset, prior).");

  m.def(
      "sigmoid_belief_net_posterior",
      [](const CArray<T>& data, const py::dict& params, const std::string& posterior, Index n_states,
         std::uint64_t seed, const std::vector<Index>& proposals, int rounds, bool with_states, int n_threads,
         Index chunk_size) {
        const SigmoidBeliefNetParams p = sbn_from_dict(params);
        return posterior_of<T>(
            data, p.components.cols(), make_posterior(posterior, n_states, seed, proposals), rounds, with_states,
            n_threads, chunk_size,
            [&](const DataRef<T>& view, const BinaryPosteriorOptions& options, int r, const Execution& execution,
                const BinaryPosteriorOutput<T>& output) {
              return sigmoid_belief_net_infer<T>(view, p, options, r, execution, output);
            },
            [&](const SigmoidBeliefNetStats& stats) { return sigmoid_belief_net_terms(stats, p); });
      },
      py::arg("data"), py::arg("params"), py::arg("posterior"), py::arg("n_states"), py::arg("seed"),
      py::arg("proposals"), py::arg("rounds"), py::arg("with_states"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "As binary_sparse_coding_posterior, for a sigmoid belief net.");
}

}  // namespace

void bind_binary(py::module_& m) {
  m.def(
      "binary_sparse_coding_m_step",
      [](const py::dict& params, const Eigen::MatrixXd& cross, const Eigen::MatrixXd& second_moment, double weight,
         double squared_norm, bool shared_prior) {
        BinarySparseCodingStats stats;
        stats.cross = cross;
        stats.second_moment = second_moment;
        stats.weight = weight;
        stats.squared_norm = squared_norm;
        const BinarySparseCodingParams p = bsc_from_dict(params);
        if (cross.rows() != p.components.rows() || cross.cols() != p.components.cols() + 1 ||
            second_moment.rows() != cross.cols() || second_moment.cols() != cross.cols())
          throw py::value_error("cross must be (D, H+1) and second_moment (H+1, H+1)");
        return bsc_to_dict(binary_sparse_coding_m_step(stats, p, shared_prior));
      },
      py::arg("params"), py::arg("cross"), py::arg("second_moment"), py::arg("weight"), py::arg("squared_norm"),
      py::arg("shared_prior"), "The closed-form M-step from Σ w x z̃ᵀ, Σ w z̃ z̃ᵀ, Σ w and Σ w ‖x‖² (tests).");
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
