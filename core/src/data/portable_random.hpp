// Random variates computed from the raw output of std::mt19937_64, whose sequence the C++
// standard fixes exactly. The std::*_distribution classes are implementation-defined, so
// a corpus built from them would differ between libstdc++, libc++ and MSVC; these do not.
// (They use std::log/std::sqrt/std::exp, so bit-identity also assumes a libm whose results
// agree; sqrt is exact by IEEE 754 and common libms agree on log/exp for these inputs.)
#pragma once
#include <cstdint>
#include <random>
#include <span>

namespace trainer::data {

using Engine = std::mt19937_64;

// Uniform in [0, 1) with 53 bits: the top bits of one engine output.
double uniform01(Engine& engine);

// Uniform integer in [0, n), n > 0, without modulo bias (rejects the short tail).
std::uint64_t uniform_below(Engine& engine, std::uint64_t n);

// Standard normal by Marsaglia's polar method.
double standard_normal(Engine& engine);

// log of a Gamma(shape, 1) variate, shape > 0, by Marsaglia and Tsang (2000). Returned in
// log space because for small shapes the variate itself underflows to 0.
double log_gamma_variate(Engine& engine, double shape);

// Fills `out` with a draw from the symmetric Dirichlet(concentration) distribution.
void symmetric_dirichlet(Engine& engine, double concentration, std::span<double> out);

}  // namespace trainer::data
