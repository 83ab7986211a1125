// The one EM driver (DESIGN.md §4). A model supplies
//   Expectation e_step(const Params&)                      one pass (or a D×D shortcut) giving q's statistics
//   ElboTerms   evaluate(const Expectation&, const Params&) F and S at (q, Θ), for any Θ
//   Params      m_step(const Expectation&, const Params&)   new parameters from the statistics
// and the driver alternates them, records the monitor, and stops by its rule.
// An M-step may also take `Expectation&` and move q to an equivalent parametrisation (sparse coding
// renormalises W's columns and rescales q with them); F(q_t, Θ_{t+1}) is then evaluated for that q.
// Parameters with a `recovered` list (mixtures) report the components their M-step re-seeded to the monitor.
#pragma once

#include <chrono>
#include <functional>
#include <type_traits>
#include <utility>

#include "entrosum/core/errors.hpp"
#include "entrosum/core/monitor.hpp"

namespace entrosum {

namespace detail {
/// Whether a model's parameters carry `recovered`, the components their M-step re-seeded (mixtures).
template <typename Params, typename = void>
struct ReportsRecoveries : std::false_type {};
template <typename Params>
struct ReportsRecoveries<Params, std::void_t<decltype(std::declval<const Params&>().recovered)>> : std::true_type {};
}  // namespace detail

/// `interrupted` is polled before every iteration (passes over the data poll it between blocks too),
/// so a fit whose iterations never touch the data still stops promptly.
template <typename Model>
typename Model::Params run_em(const Model& model, typename Model::Params params, ConvergenceMonitor& monitor,
                              const IterationCallback& on_iteration = {},
                              const std::function<bool()>& interrupted = {}) {
  using Clock = std::chrono::steady_clock;
  for (;;) {
    if (interrupted && interrupted()) throw Interrupted();
    const auto start = Clock::now();
    auto expectation = model.e_step(params);                      // q_t from Θ_t
    const ElboTerms terms = model.evaluate(expectation, params);  // F(q_t, Θ_t), S(q_t, Θ_t)
    // Θ_{t+1}, as scikit-learn also does after its last E-step; Θ_t is moved in, so that an M-step that takes
    // it by value can reuse its storage
    params = model.m_step(expectation, std::move(params));
    if constexpr (detail::ReportsRecoveries<typename Model::Params>::value) monitor.note_recoveries(params.recovered);
    const ElboTerms after = model.evaluate(expectation, params);  // F(q_t, Θ_{t+1}), S(q_t, Θ_{t+1})
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const bool stop = monitor.record(terms, seconds, &after);
    if (on_iteration) on_iteration(monitor.history().back());
    if (stop) return params;
  }
}

}  // namespace entrosum
