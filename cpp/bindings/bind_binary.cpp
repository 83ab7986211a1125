// Binary latents: binary sparse coding and sigmoid belief nets, with exact or truncated posteriors.
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "binary_checks.hpp"
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

using StatesArray = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

/// The kept states of a block's rows: from an earlier pass (an (n_rows, n_states) uint64 array, checked), or fresh
/// initial sets when `states` is None.
TruncatedStates states_from(const py::object& states, Index n_rows, const BinaryPosteriorOptions& options,
                            Index n_components) {
  if (states.is_none())
    return TruncatedStates(n_rows, options.n_states, n_components, options.seed, options.row_offset);
  const auto array = states.cast<StatesArray>();
  if (array.ndim() != 2 || array.shape(0) != n_rows || array.shape(1) != options.n_states)
    throw py::value_error("states must be an array of shape (" + std::to_string(n_rows) + ", " +
                          std::to_string(options.n_states) + ") (n_samples, n_states)");
  std::vector<std::uint64_t> keys(array.data(), array.data() + array.size());
  try {
    return TruncatedStates(n_rows, options.n_states, n_components, std::move(keys));
  } catch (const std::invalid_argument& error) {
    throw py::value_error(std::string("states: ") + error.what());
  }
}

StatesArray states_to_array(const TruncatedStates& states) {
  StatesArray out({static_cast<py::ssize_t>(states.rows()), static_cast<py::ssize_t>(states.n_states())});
  std::copy(states.keys().begin(), states.keys().end(), out.mutable_data());
  return out;
}

/// One E-step over a block of rows (rows `row_offset + n` of the data set): `e_step(view, weights, options,
/// states, execution)` gives the statistics. Returns (statistics, the kept states afterwards or None).
template <typename T, typename EStep>
py::tuple block_e_step(const CArray<T>& data, const Eigen::VectorXd& weights, BinaryPosteriorOptions options,
                       Index n_components, const py::object& states, Index row_offset, int n_threads, Index chunk_size,
                       const EStep& e_step) {
  check_data(data);
  const DataRef<T> view = as_data(data);
  check_sample_weight(weights, view.rows());
  options.row_offset = row_offset;
  check_binary_posterior(options, n_components);
  const Execution execution = make_execution(n_threads, chunk_size, &data);
  if (options.kind == BinaryPosteriorKind::exact) {
    auto stats = run_without_gil([&] { return e_step(view, weights, options, nullptr, execution); });
    return py::make_tuple(std::move(stats), py::none());
  }
  TruncatedStates kept = states_from(states, view.rows(), options, n_components);
  auto stats = run_without_gil([&] { return e_step(view, weights, options, &kept, execution); });
  return py::make_tuple(std::move(stats), states_to_array(kept));
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "binary_sparse_coding_block",
      [](const CArray<T>& data, const Eigen::VectorXd& weights, const py::dict& params, const std::string& posterior,
         Index n_states, std::uint64_t seed, const std::vector<Index>& proposals, const py::object& states,
         int iteration, Index row_offset, int n_threads, Index chunk_size) {
        const BinarySparseCodingParams p = bsc_from_dict(params);
        check_binary_sparse_coding_params(p, data.ndim() == 2 ? data.shape(1) : -1);
        return block_e_step<T>(data, weights, make_posterior(posterior, n_states, seed, proposals), p.components.cols(),
                               states, row_offset, n_threads, chunk_size,
                               [&](const DataRef<T>& view, const Eigen::VectorXd& w, const BinaryPosteriorOptions& o,
                                   TruncatedStates* kept, const Execution& execution) {
                                 return binary_sparse_coding_e_step<T>(view, w, p, o, kept, iteration, execution);
                               });
      },
      py::arg("data"), py::arg("weights"), py::arg("params"), py::arg("posterior"), py::arg("n_states"),
      py::arg("seed"), py::arg("proposals"), py::arg("states"), py::arg("iteration"), py::arg("row_offset"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "One E-step of binary sparse coding over a block of rows (rows row_offset + n of the data set; empty weights "
      "weigh every row 1): (mergeable statistics, the kept states (n, S) afterwards, or None for the exact "
      "posterior). states=None starts a truncated posterior from fresh sets.");

  m.def(
      "sigmoid_belief_net_block",
      [](const CArray<T>& data, const Eigen::VectorXd& weights, const py::dict& params, const std::string& posterior,
         Index n_states, std::uint64_t seed, const std::vector<Index>& proposals, const py::object& states,
         int iteration, Index row_offset, int n_threads, Index chunk_size) {
        const SigmoidBeliefNetParams p = sbn_from_dict(params);
        check_sigmoid_belief_net_params(p, data.ndim() == 2 ? data.shape(1) : -1);
        return block_e_step<T>(data, weights, make_posterior(posterior, n_states, seed, proposals), p.components.cols(),
                               states, row_offset, n_threads, chunk_size,
                               [&](const DataRef<T>& view, const Eigen::VectorXd& w, const BinaryPosteriorOptions& o,
                                   TruncatedStates* kept, const Execution& execution) {
                                 return sigmoid_belief_net_e_step<T>(view, w, p, o, kept, iteration, execution);
                               });
      },
      py::arg("data"), py::arg("weights"), py::arg("params"), py::arg("posterior"), py::arg("n_states"),
      py::arg("seed"), py::arg("proposals"), py::arg("states"), py::arg("iteration"), py::arg("row_offset"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "As binary_sparse_coding_block, for a sigmoid belief net (0/1 data).");

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
  bind_statistics<BinarySparseCodingStats>(
      m, "BinarySparseCodingStats", "Sums of binary sparse coding's posterior statistics; mergeable and picklable.",
      [](const BinarySparseCodingStats& s) {
        return py::make_tuple(s.weight, s.squared_norm, s.cross, s.second_moment, s.posterior_entropy, s.log_joint_sum);
      },
      [](const py::tuple& state) {
        if (state.size() != 6) throw std::runtime_error("invalid BinarySparseCodingStats state");
        BinarySparseCodingStats s;
        s.weight = state[0].cast<double>();
        s.squared_norm = state[1].cast<double>();
        s.cross = state[2].cast<Eigen::MatrixXd>();
        s.second_moment = state[3].cast<Eigen::MatrixXd>();
        s.posterior_entropy = state[4].cast<double>();
        s.log_joint_sum = state[5].cast<double>();
        return s;
      })
      .def_property_readonly("count", [](const BinarySparseCodingStats& s) { return s.weight; })
      .def_property_readonly("free_energy",
                             [](const BinarySparseCodingStats& s) { return s.log_joint_sum / s.weight; });
  bind_statistics<SigmoidBeliefNetStats>(
      m, "SigmoidBeliefNetStats", "q's statistics of a sigmoid belief net per distinct state; mergeable and picklable.",
      [](const SigmoidBeliefNetStats& s) {
        return py::make_tuple(s.weight, s.posterior_entropy, s.log_joint_sum, s.n_features, s.n_components, s.keys,
                              s.state_weight, s.data_sum);
      },
      [](const py::tuple& state) {
        if (state.size() != 8) throw std::runtime_error("invalid SigmoidBeliefNetStats state");
        SigmoidBeliefNetStats s;
        s.weight = state[0].cast<double>();
        s.posterior_entropy = state[1].cast<double>();
        s.log_joint_sum = state[2].cast<double>();
        s.n_features = state[3].cast<Index>();
        s.n_components = state[4].cast<Index>();
        s.keys = state[5].cast<std::vector<std::uint64_t>>();
        s.state_weight = state[6].cast<Eigen::VectorXd>();
        s.data_sum = state[7].cast<RowMatrix<double>>();
        return s;
      })
      .def_property_readonly("count", [](const SigmoidBeliefNetStats& s) { return s.weight; })
      .def_property_readonly("free_energy", [](const SigmoidBeliefNetStats& s) { return s.log_joint_sum / s.weight; });

  m.def(
      "binary_sparse_coding_terms",
      [](const BinarySparseCodingStats& stats, const py::dict& params) {
        const BinarySparseCodingParams p = bsc_from_dict(params);
        check_binary_sparse_coding_params(p, p.components.rows());
        check_stats(stats, p.components.rows(), p.components.cols());
        return elbo_terms_to_dict(binary_sparse_coding_terms(stats, p));
      },
      py::arg("stats"), py::arg("params"), "F(q, Θ) per sample and the entropy sum's terms from q's statistics.");
  m.def(
      "binary_sparse_coding_update",
      [](const BinarySparseCodingStats& stats, const py::dict& params, bool shared_prior) {
        const BinarySparseCodingParams p = bsc_from_dict(params);
        check_binary_sparse_coding_params(p, p.components.rows());
        check_stats(stats, p.components.rows(), p.components.cols());
        return bsc_to_dict(binary_sparse_coding_m_step(stats, p, shared_prior));
      },
      py::arg("stats"), py::arg("params"), py::arg("shared_prior"), "The closed-form M-step from merged statistics.");
  m.def(
      "sigmoid_belief_net_terms",
      [](const SigmoidBeliefNetStats& stats, const py::dict& params) {
        const SigmoidBeliefNetParams p = sbn_from_dict(params);
        check_sigmoid_belief_net_params(p, p.components.rows());
        check_stats(stats, p.components.rows(), p.components.cols());
        return elbo_terms_to_dict(sigmoid_belief_net_terms(stats, p));
      },
      py::arg("stats"), py::arg("params"), "F(q, Θ) per sample and the entropy sum's terms from q's statistics.");
  m.def(
      "sigmoid_belief_net_update",
      [](const SigmoidBeliefNetStats& stats, const py::dict& params, double newton_tol, int newton_max_iter) {
        const SigmoidBeliefNetParams p = sbn_from_dict(params);
        check_sigmoid_belief_net_params(p, p.components.rows());
        check_stats(stats, p.components.rows(), p.components.cols());
        if (!(newton_tol > 0.0) || newton_max_iter < 1)
          throw py::value_error("newton_tol must be positive and newton_max_iter at least 1");
        NewtonOptions newton;
        newton.tol = newton_tol;
        newton.max_iter = newton_max_iter;
        return sbn_to_dict(run_without_gil([&] { return sigmoid_belief_net_m_step(stats, p, newton); }));
      },
      py::arg("stats"), py::arg("params"), py::arg("newton_tol"), py::arg("newton_max_iter"),
      "π in closed form and (W, b) by Newton's method from merged statistics.");
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
