// Umbrella header: everything a C++ user of entrosum needs. Each header below also compiles on its own
// (tests/consumer checks every installed header in a translation unit of its own).
#pragma once

// core: types, errors, execution (and subnormal flushing), moments, entropies, the EM driver, the monitor, L-BFGS,
// random numbers
#include "entrosum/core/csr.hpp"
#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/floating_point.hpp"
#include "entrosum/core/lbfgs.hpp"
#include "entrosum/core/moments.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/random.hpp"
#include "entrosum/core/types.hpp"

// mixtures: k-means, the shared mixture E-step, Gaussian, Bernoulli, Poisson, binomial, exponential, gamma,
// categorical and multinomial mixtures, their passes over CSR data, and mixtures of a family per column (mixed)
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/binomial_mixture.hpp"
#include "entrosum/mixtures/categorical_mixture.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "entrosum/mixtures/discrete_mixture_csr.hpp"
#include "entrosum/mixtures/exponential_mixture.hpp"
#include "entrosum/mixtures/gamma_mixture.hpp"
#include "entrosum/mixtures/gaussian_mixture.hpp"
#include "entrosum/mixtures/kmeans.hpp"
#include "entrosum/mixtures/mixed_mixture.hpp"
#include "entrosum/mixtures/mixture.hpp"
#include "entrosum/mixtures/multinomial_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"

// linear: PPCA and factor analysis
#include "entrosum/linear/linear_gaussian.hpp"

// sparse: Laplace sparse coding
#include "entrosum/sparse/sparse_coding.hpp"

// vae: the three-entropy sum of Gaussian VAEs over mini-batches, the linear VAE
#include "entrosum/vae/gaussian_vae.hpp"
#include "entrosum/vae/linear_vae.hpp"
// binary: binary latents (state sets, binary sparse coding, sigmoid belief nets)
#include "entrosum/binary/binary_sparse_coding.hpp"
#include "entrosum/binary/binary_states.hpp"
#include "entrosum/binary/sigmoid_belief_net.hpp"

// io: saved models (NPZ archives with JSON metadata)
#include "entrosum/io/model_io.hpp"
#include "entrosum/io/npz.hpp"

#include "entrosum/version.hpp"
