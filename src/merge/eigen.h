// Eigen for the merge layer, single-threaded (results must not depend on the thread count) and
// included with GCC's uninitialized-value warnings off: with AVX-512 enabled (-march=native),
// GCC 12 flags the deliberate self-initialisation inside its own _mm512_undefined_pd() wherever
// Eigen's packet code inlines it, which -Werror would turn into a build failure.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Dense>
#include <Eigen/SVD>
#pragma GCC diagnostic pop
