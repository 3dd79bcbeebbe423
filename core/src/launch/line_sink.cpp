#include "launch/line_sink.hpp"

#include <cstring>

#include "launch/net.hpp"

namespace trainer::launch {

LineSink::LineSink(std::string prefix, int fd, std::size_t max_line)
    : prefix_(std::move(prefix)), fd_(fd), max_line_(max_line) {}

void LineSink::emit(std::string& out, const char* line, std::size_t n) {
  out += prefix_;
  out.append(line, n);
  out += '\n';
}

void LineSink::feed(const char* data, std::size_t n) {
  // All lines completed by this chunk go out in one write: fewer syscalls, same atomicity.
  std::string out;
  const char* end = data + n;
  while (data < end) {
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', static_cast<std::size_t>(end - data)));
    if (!nl) {
      partial_.append(data, static_cast<std::size_t>(end - data));
      break;
    }
    if (partial_.empty()) {
      emit(out, data, static_cast<std::size_t>(nl - data));
    } else {
      partial_.append(data, static_cast<std::size_t>(nl - data));
      emit(out, partial_.data(), partial_.size());
      partial_.clear();
    }
    data = nl + 1;
  }
  while (partial_.size() >= max_line_) {
    emit(out, partial_.data(), max_line_);
    partial_.erase(0, max_line_);
  }
  // A failed write (closed stdout) drops the output; supervising goes on regardless.
  if (!out.empty()) write_fully(fd_, out.data(), out.size());
}

void LineSink::finish() {
  if (partial_.empty()) return;
  std::string out;
  emit(out, partial_.data(), partial_.size());
  partial_.clear();
  write_fully(fd_, out.data(), out.size());
}

}  // namespace trainer::launch
