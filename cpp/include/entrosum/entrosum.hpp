// Umbrella header: everything a C++ user of entrosum needs.
#pragma once

#include "entrosum/bernoulli_mixture.hpp"
#include "entrosum/discrete_mixture.hpp"
#include "entrosum/em.hpp"
#include "entrosum/entropy.hpp"
#include "entrosum/errors.hpp"
#include "entrosum/execution.hpp"
#include "entrosum/gaussian_mixture.hpp"
#include "entrosum/kmeans.hpp"
#include "entrosum/linear_gaussian.hpp"
#include "entrosum/mixture.hpp"
#include "entrosum/moments.hpp"
#include "entrosum/monitor.hpp"
#include "entrosum/poisson_mixture.hpp"
#include "entrosum/types.hpp"
#include "entrosum/version.hpp"
