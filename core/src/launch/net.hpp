// Small POSIX socket helpers shared by the store server, the store client and the launch
// configuration: "host:port" parsing, listening, connecting with a deadline, and exact
// reads/writes on non-blocking descriptors bounded by a deadline.
#pragma once
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "launch/unique_fd.hpp"

namespace trainer::launch {

using Clock = std::chrono::steady_clock;

// "host:port" or "[v6addr]:port"; nullopt when malformed or the port is outside 0..65535.
std::optional<std::pair<std::string, int>> split_host_port(std::string_view text);
// The inverse: brackets an IPv6 literal so the result parses back.
std::string join_host_port(const std::string& host, int port);

// Binds and listens (non-blocking, close-on-exec, SO_REUSEADDR). Port 0 picks a free port;
// `bound_port` receives the real one. Throws std::runtime_error naming host:port.
UniqueFd listen_tcp(const std::string& host, int port, int& bound_port);

// One connection attempt to each resolved address of host:port, each bounded by `deadline`.
// Returns a connected, non-blocking, TCP_NODELAY socket, or an empty UniqueFd with the
// reason in `error` (refused, unreachable, name not resolved...).
UniqueFd try_connect_tcp(const std::string& host, int port, Clock::time_point deadline, std::string& error);

void set_nonblocking(int fd);
void set_nodelay(int fd);

// Waits for `events` on fd until the deadline. Returns false on timeout; retries EINTR.
bool wait_fd(int fd, short events, Clock::time_point deadline);

// Writes/reads exactly `n` bytes on a non-blocking descriptor before `deadline`. Return an
// empty string on success, else what went wrong ("timed out", "connection closed", strerror).
std::string write_exact(int fd, const void* data, std::size_t n, Clock::time_point deadline);
std::string read_exact(int fd, void* data, std::size_t n, Clock::time_point deadline);

// Writes all bytes to a descriptor that may be blocking or not (a terminal, file or pipe),
// waiting as long as it takes. Returns false if the descriptor failed (e.g. EPIPE).
bool write_fully(int fd, const char* data, std::size_t n);

}  // namespace trainer::launch
