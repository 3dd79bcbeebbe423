// Checksums of checkpoint chunks: XXH64 (the xxHash 64-bit algorithm, implemented here), fast
// enough to hash every byte written and read without showing in the save time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trainer::checkpoint {

std::uint64_t xxh64(const void* data, std::size_t bytes, std::uint64_t seed = 0);

std::string hex64(std::uint64_t v);                          // 16 lowercase hex digits
std::optional<std::uint64_t> parse_hex64(std::string_view s);  // exactly 16 hex digits

}  // namespace trainer::checkpoint
