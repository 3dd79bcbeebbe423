// Backend's default host allocation: ordinary memory, for backends whose tensors are host
// memory already (cpu) or that have nothing faster to offer.
#include <cstdlib>
#include <new>

#include "trainer/backend.hpp"

namespace trainer {

void* Backend::allocate_host(std::size_t bytes) {
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void Backend::free_host(void* p) noexcept { std::free(p); }

}  // namespace trainer
