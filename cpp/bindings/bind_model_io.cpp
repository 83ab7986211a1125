// Saved models read by the C++ library (entrosum::load_model), so that Python can check them against
// its own reader: the parameters the C++ side sees and the scores it computes.
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "common.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/io/model_io.hpp"

namespace entrosum::bindings {

namespace {

const char* noise_name(NoiseModel noise) { return noise == NoiseModel::isotropic ? "isotropic" : "diagonal"; }

const char* covariance_name(CovarianceType type) {
  switch (type) {
    case CovarianceType::full:
      return "full";
    case CovarianceType::tied:
      return "tied";
    case CovarianceType::diag:
      return "diag";
    case CovarianceType::spherical:
      return "spherical";
    case CovarianceType::tied_diag:
      return "tied_diag";
    case CovarianceType::tied_spherical:
      return "tied_spherical";
  }
  return "unknown";
}

/// The parameters as the C++ library holds them (stacked covariances, W of shape (D, H)).
struct ParametersToDict {
  Results operator()(const SavedLinearGaussian& m) const {
    Results out;
    out["noise"] = noise_name(m.noise);
    out["mean"] = m.params.mean;
    out["components"] = m.params.components;
    out["noise_variance"] = m.params.noise_variance;
    return out;
  }
  Results operator()(const SavedGaussianMixture& m) const {
    Results out;
    out["covariance_type"] = covariance_name(m.params.covariance_type);
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    out["covariances"] = m.params.covariances;
    out["precision_cholesky"] = m.params.precision_cholesky;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<BernoulliMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    out["alpha"] = m.settings.alpha;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<PoissonMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<BinomialMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    out["n_trials"] = m.settings.n_trials;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<ExponentialMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<CategoricalMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    out["n_levels"] = m.settings.n_levels;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<MultinomialMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    return out;
  }
  Results operator()(const SavedDiscreteMixture<GammaMixture>& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    out["shapes"] = m.params.shapes;
    return out;
  }
  Results operator()(const SavedMixedMixture& m) const {
    Results out;
    out["weights"] = m.params.weights;
    out["means"] = m.params.means;
    out["variances"] = m.params.variances;
    out["shapes"] = m.params.shapes;
    out["probabilities"] = m.params.probabilities;
    std::vector<std::string> families;
    for (ColumnFamily family : m.spec.families) families.emplace_back(column_family_name(family));
    out["column_families"] = families;
    out["n_trials"] = m.spec.n_trials;
    out["n_levels"] = m.spec.n_levels;
    return out;
  }
  Results operator()(const SavedLinearVae& m) const {
    Results out;
    out["components"] = m.params.decoder_weights;
    out["mean"] = m.params.decoder_bias;
    out["noise_variance"] = m.params.noise_variance;
    out["encoder_weights"] = m.params.encoder_weights;
    out["encoder_bias"] = m.params.encoder_bias;
    out["encoder_variance"] = m.params.encoder_variance;
    return out;
  }
  Results operator()(const SavedSparseCoding& m) const {
    Results out;
    out["posterior"] = m.form == PosteriorForm::full ? "full" : "diag";
    out["components"] = m.params.components;
    out["scales"] = m.params.scales;
    out["noise_variance"] = m.params.noise_variance;
    out["e_step_tol"] = m.solver.tol;
    out["e_step_max_iter"] = m.solver.max_iter;
    return out;
  }
  Results operator()(const SavedBinarySparseCoding& m) const {
    Results out = binary(m.params, m.inference);
    out["noise_variance"] = m.params.noise_variance;
    return out;
  }
  Results operator()(const SavedSigmoidBeliefNet& m) const { return binary(m.params, m.inference); }
  template <typename Params>
  static Results binary(const Params& params, const SavedBinaryInference& inference) {
    Results out;
    out["posterior"] = inference.posterior.kind == BinaryPosteriorKind::exact ? "exact" : "truncated";
    out["n_states"] = inference.posterior.n_states;
    out["inference_rounds"] = inference.rounds;
    out["components"] = params.components;
    out["offset"] = params.offset;
    out["prior"] = params.prior;
    return out;
  }
};

/// Parsed metadata as the Python object json.loads(text, parse_int=float) would give: numbers are floats (as
/// the hand-written reader before nlohmann-json gave them), objects keep the document's key order.
py::object to_python(const nlohmann::ordered_json& value) {
  using Type = nlohmann::ordered_json::value_t;
  switch (value.type()) {
    case Type::null:
      return py::none();
    case Type::boolean:
      return py::bool_(value.get<bool>());
    case Type::number_integer:
    case Type::number_unsigned:
    case Type::number_float:
      return py::float_(value.get<double>());  // integers correctly rounded, as Python's float(int)
    case Type::string:
      return py::str(value.get_ref<const std::string&>());  // valid UTF-8: nlohmann's lexer checks it
    case Type::array: {
      py::list items;
      for (const nlohmann::ordered_json& item : value) items.append(to_python(item));
      return std::move(items);
    }
    case Type::object: {
      py::dict members;
      for (auto member = value.begin(); member != value.end(); ++member)
        members[py::str(member.key())] = to_python(member.value());
      return std::move(members);
    }
    case Type::binary:     // only from binary formats (CBOR, ...), never from JSON text
    case Type::discarded:  // only from a parser callback that discards values, which parse_metadata has not
      break;
  }
  throw std::logic_error("metadata holds a value that JSON text cannot give");
}

template <typename T>
Eigen::VectorXd per_sample(const SavedModel& model, const CArray<T>& data, int n_threads, Index chunk_size) {
  const DataRef<T> view = as_data(data);
  const Execution execution = make_execution(n_threads, chunk_size, &data);
  return run_without_gil([&] { return score_samples<T>(model, view, execution); });
}

template <typename T>
double mean_score(const SavedModel& model, const CArray<T>& data, int n_threads, Index chunk_size) {
  const DataRef<T> view = as_data(data);
  const Execution execution = make_execution(n_threads, chunk_size, &data);
  return run_without_gil([&] { return score<T>(model, view, execution); });
}

}  // namespace

void bind_model_io(py::module_& m) {
  py::register_exception<FormatError>(m, "FormatError", PyExc_ValueError);
  py::class_<SavedModel>(m, "SavedModel", "A saved model read by the C++ library (entrosum::load_model).")
      .def(py::init([](const std::string& path) { return load_model(path); }), py::arg("path"))
      .def_readonly("model", &SavedModel::model)
      .def_readonly("dtype", &SavedModel::dtype)
      .def_readonly("entrosum_version", &SavedModel::entrosum_version)
      .def_readonly("n_features", &SavedModel::n_features)
      .def(
          "parameters", [](const SavedModel& model) { return std::visit(ParametersToDict{}, model.params); },
          "The parameters as the C++ library holds them.")
      .def("score_samples", &per_sample<float>, py::arg("data"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0)
      .def("score_samples", &per_sample<double>, py::arg("data"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
           "(n_samples) log p(x_n) (each sample's ELBO for the linear VAE) computed by the C++ library from the loaded "
           "parameters.")
      .def("score", &mean_score<float>, py::arg("data"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0)
      .def("score", &mean_score<double>, py::arg("data"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
           "The estimator's score (mean log-likelihood; ES-ELBO per sample for sparse coding, ELBO per sample for the "
           "linear "
           "VAE) computed in C++.")
      .def_property_readonly(
          "metadata", [](const SavedModel& model) { return to_python(model.metadata); },
          "The metadata as the C++ JSON reader parsed it.");
  m.def(
      "parse_json", [](const std::string& text) { return to_python(parse_metadata(text)); }, py::arg("text"),
      "Parse JSON with the C++ reader (numbers become floats); for testing it against Python's json.");
}

}  // namespace entrosum::bindings
