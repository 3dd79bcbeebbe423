// Text shared by everything the core prints or writes: JSON string quoting and
// human-readable durations, byte sizes and counts.
#pragma once
#include <string>
#include <string_view>

namespace trainer {

std::string json_quote(std::string_view s);  // "..." with JSON escapes
std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"
std::string format_bytes(double bytes);       // "12.30 MiB"
std::string format_count(double n);           // "12,345"

}  // namespace trainer
