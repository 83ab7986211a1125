// The parameters of the exponential-family (discrete) mixtures as Python dicts, shared by their dense and CSR
// binding files.
#pragma once

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "mixture_common.hpp"

namespace entrosum::bindings {

inline DiscreteMixtureParams make_params(const Eigen::VectorXd& weights, const Eigen::MatrixXd& means,
                                         const Eigen::MatrixXd& shapes = Eigen::MatrixXd()) {
  if (weights.size() != means.rows()) throw py::value_error("weights and means must have one entry per component");
  return DiscreteMixtureParams{weights, means, shapes, {}};
}

inline DiscreteMixtureParams params_from_dict(const py::dict& params) {
  return make_params(dict_entry<Eigen::VectorXd>(params, "weights"), dict_entry<Eigen::MatrixXd>(params, "means"),
                     params.contains("shapes") ? dict_entry<Eigen::MatrixXd>(params, "shapes") : Eigen::MatrixXd());
}

/// The parameters' shapes (and, for a two-parameter family, its shapes) fit statistics of `n_features` columns.
template <typename Family>
void check_family_params(const DiscreteMixtureParams& p, Index n_features) {
  check_params(p, n_features);
  if constexpr (Family::has_second_statistic) check_shape("shapes", p.shapes, p.weights.size(), n_features);
}

/// The settings fit data of `n_columns` columns, and the parameters fit the columns the statistics are over.
template <typename Family>
void check_family_params(const DiscreteMixtureParams& p, const typename Family::Settings& settings, Index n_columns) {
  Family::check_settings(settings, n_columns);
  check_family_params<Family>(p, discrete_statistics_width<Family>(settings, n_columns));
}

inline Results params_to_dict(const DiscreteMixtureParams& p) {
  Results out;
  out["weights"] = p.weights;
  out["means"] = p.means;
  if (p.shapes.size()) out["shapes"] = p.shapes;
  out["recovered"] = recovered_to_list(p.recovered);
  return out;
}

}  // namespace entrosum::bindings
