// Umbrella header: everything a C++ user of entrosum needs.
#pragma once

#include "entrosum/em.hpp"
#include "entrosum/entropy.hpp"
#include "entrosum/errors.hpp"
#include "entrosum/execution.hpp"
#include "entrosum/linear_gaussian.hpp"
#include "entrosum/moments.hpp"
#include "entrosum/monitor.hpp"
#include "entrosum/types.hpp"
#include "entrosum/version.hpp"
